"""An open incident follows its alert, end to end: the real operator edits it in the simulator, coalesced."""

from __future__ import annotations

import time
from typing import Any

from incidentio_operator.standins.simulator import CUSTOM_FIELD_TEAM_ID, SEVERITY_CRITICAL_ID, SEVERITY_MINOR_ID
from tests.e2e import objects as o
from tests.harness import DEMO_KEY, GROUP_VERSION, Environment, wait_for

DESTINATIONS, RULES, ALERTS = "incidentiodestinations", "alertrules", "dataalerts"
NS, NAME = o.NS, "orders"
# Seconds of quiet before an edit goes: more than the operator takes to see each change of the burst.
QUIET = "3"
# The detector's pace in the burst: ten changes in two seconds.
BURST_PACE = 0.2


def setup(env: Environment) -> None:
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    env.client.apply(o.destination(env.sim.url, severity={"map": {"warning": "Minor", "critical": "Critical"}}))
    env.client.apply(o.rule("breaking", ["incidentio"], eventTypes=["schema_change"]))
    env.wait_ready(DESTINATIONS, NS, "incidentio")


def patch_spec(env: Environment, **spec: Any) -> int:
    """Change the alert's spec; returns the generation the API server gave it."""
    body = env.client.patch(GROUP_VERSION, ALERTS, NS, NAME, {"spec": spec})
    return int(body["metadata"]["generation"])


def settled_at(env: Environment, generation: int, updates: int) -> dict[str, Any]:
    """The delivery once the operator saw ``generation`` and has nothing waiting, after ``updates`` edits."""

    def check() -> dict[str, Any] | None:
        status = env.status(ALERTS, NS, NAME)
        if status.get("observedGeneration") != generation:
            return None
        (delivery,) = [d for d in status.get("deliveries") or () if d["epoch"] == status["epoch"]]
        if delivery.get("pendingUpdate") or int(delivery.get("updates") or 0) != updates:
            return None
        return dict(delivery)

    return wait_for(check, what=f"generation {generation} seen, {updates} edit(s) made, nothing waiting")


def waiting_at(env: Environment, generation: int) -> dict[str, Any]:
    """The delivery once the operator saw ``generation`` and holds an edit waiting for the alert to be quiet."""

    def check() -> dict[str, Any] | None:
        status = env.status(ALERTS, NS, NAME)
        delivery = next((d for d in status.get("deliveries") or () if d["epoch"] == status.get("epoch")), {})
        seen = status.get("observedGeneration") == generation and delivery.get("pendingUpdate")
        return dict(delivery) if seen else None

    return wait_for(check, what=f"generation {generation} seen with an edit waiting")


def content_edits(env: Environment, incident_id: str) -> list[dict[str, Any]]:
    """The edits that changed what the incident says (not its status: closes are edits too)."""
    return [edit.fields for edit in env.sim.incident_edits(incident_id) if "incident_status_id" not in edit.fields]


def test_an_open_incident_follows_its_alert_with_one_edit_per_burst_and_none_once_closed(env: Environment) -> None:
    env.start_operator("--update-quiet", QUIET)
    setup(env)
    env.client.apply(o.alert(NAME, severity="warning"))
    opened = env.wait_ready(ALERTS, NS, NAME)
    incident_id = opened["deliveries"][0]["incidentId"]
    assert env.sim.incident(incident_id)["severity"]["id"] == SEVERITY_MINOR_ID

    # Warning → critical: one edit with the new severity (and the summary, which names the severity).
    generation = patch_spec(env, severity="critical")
    delivery = settled_at(env, generation, 1)
    assert env.sim.incident(incident_id)["severity"]["id"] == SEVERITY_CRITICAL_ID
    (edit,) = content_edits(env, incident_id)
    assert set(edit) == {"severity_id", "summary"} and edit["severity_id"] == SEVERITY_CRITICAL_ID
    assert delivery["sent"]["generation"] == generation and delivery["lastUpdatedAt"]
    reasons = [e.get("reason") for e in env.client.events(NS) if e["involvedObject"]["name"] == NAME]
    assert "IncidentUpdated" in reasons

    # A change to nothing incident.io holds (the asset's database is in no field sent): no edit is planned.
    asset = {**o.alert(NAME)["spec"]["asset"], "database": "prod_db_replica"}
    generation = patch_spec(env, asset=asset)
    settled_at(env, generation, 1)

    # Ten description changes over two seconds (a detector rewriting as it learns), each seen by the operator
    # before the next: one edit, carrying the last. Spread over seconds so a quiet period that were not
    # honoured would show as edits mid-burst (the status keeps whole seconds).
    start = time.monotonic()
    for revision in range(10):
        due = start + revision * BURST_PACE
        wait_for(lambda: time.monotonic() >= due, what="the detector's next change")  # noqa: B023 (used at once)
        generation = patch_spec(env, description=f"Revision {revision}: more rows are affected than first seen.")
        waiting = waiting_at(env, generation)
        assert waiting["updates"] == 1, "no edit goes while the alert keeps changing"
    delivery = settled_at(env, generation, 2)
    edits = content_edits(env, incident_id)
    assert len(edits) == 2, f"one edit for the severity and one for the burst of ten, not {edits}"
    assert set(edits[1]) == {"summary"} and edits[1]["summary"].startswith("Revision 9: ")
    assert env.sim.incident(incident_id)["summary"].startswith("Revision 9: ")

    # Resolved: closed, never edited again, whatever the alert says afterwards.
    patch_spec(env, state="resolved", description="Fixed upstream.")
    env.wait_reason(ALERTS, NS, NAME, "Closed")
    generation = patch_spec(env, description="Post-mortem notes.", severity="warning")
    wait_for(lambda: env.status(ALERTS, NS, NAME).get("observedGeneration") == generation, what="last change seen")
    assert len(content_edits(env, incident_id)) == 2
    assert len([r for r in env.requests("edit_incident") if r.status < 300]) == 3, "two edits and the close"


def test_a_destination_with_updates_off_leaves_the_incident_as_created(env: Environment) -> None:
    env.start_operator("--update-quiet", "0.5")
    setup(env)
    body = o.destination(env.sim.url)
    body["spec"]["incident"] = {"updates": "Off"}
    env.client.apply(body)
    env.wait_ready(DESTINATIONS, NS, "incidentio")
    env.client.apply(o.alert(NAME))
    incident_id = env.wait_ready(ALERTS, NS, NAME)["deliveries"][0]["incidentId"]
    generation = patch_spec(env, title="Column customer_id dropped from orders")
    settled_at(env, generation, 0)
    env.client.patch(GROUP_VERSION, ALERTS, NS, NAME, {"spec": {"state": "resolved"}})
    env.wait_reason(ALERTS, NS, NAME, "Closed")
    assert content_edits(env, incident_id) == []
    assert env.sim.incident(incident_id)["name"] == f"[AnomalyArmor] Column removed from {NAME}"


def custom_destination(env: Environment, fields: list[dict[str, Any]]) -> dict[str, Any]:
    body = o.destination(env.sim.url)
    body["spec"]["incident"] = {"customFields": fields}
    return body


def field_values(incident: dict[str, Any]) -> dict[str, list[str]]:
    """The incident's custom field values as the simulator holds them: field name → texts or option names."""
    return {
        entry["custom_field"]["name"]: [v.get("value_text") or v["value_option"]["value"] for v in entry["values"]]
        for entry in incident.get("custom_field_entries") or ()
    }


def option_id(env: Environment, name: str) -> str:
    (option,) = [option for f in env.sim.config.custom_fields for option in f.options if option.value == name]
    return option.id


def test_custom_fields_are_set_on_create_and_follow_the_label_they_come_from(env: Environment) -> None:
    env.start_operator("--update-quiet", "1")
    setup(env)
    team = {"field": "Affected Team", "from": "label", "label": "team"}
    env.client.apply(custom_destination(env, [team, {"field": "Data Asset", "from": "assetQualifiedName"}]))
    resolved = env.wait_ready(DESTINATIONS, NS, "incidentio")
    assert resolved["customFieldIds"]["Affected Team"]["id"] == CUSTOM_FIELD_TEAM_ID
    assert resolved["customFieldIds"]["Data Asset"]["type"] == "text"

    env.client.apply(o.alert(NAME, labels={"team": "payments"}))
    incident_id = env.wait_ready(ALERTS, NS, NAME)["deliveries"][0]["incidentId"]
    assert field_values(env.sim.incident(incident_id)) == {
        "Affected Team": ["Payments"],
        "Data Asset": [f"snowflake.prod_db.sales.{NAME}"],
    }

    env.client.patch(GROUP_VERSION, ALERTS, NS, NAME, {"metadata": {"labels": {"team": "growth"}}})
    wait_for(
        lambda: field_values(env.sim.incident(incident_id)).get("Affected Team") == ["Growth"],
        what="the team field following the alert's label",
    )
    (edit,) = content_edits(env, incident_id)
    assert edit == {
        "custom_field_entries": [
            {"custom_field_id": CUSTOM_FIELD_TEAM_ID, "values": [{"value_option_id": option_id(env, "Growth")}]}
        ]
    }


def test_a_select_value_with_no_option_opens_the_incident_without_it_and_says_why(env: Environment) -> None:
    env.start_operator()
    setup(env)
    env.client.apply(custom_destination(env, [{"field": "Affected Team", "from": "label", "label": "team"}]))
    env.wait_ready(DESTINATIONS, NS, "incidentio")
    env.client.apply(o.alert(NAME, labels={"team": "finance"}))
    status = env.wait_ready(ALERTS, NS, NAME)
    assert field_values(env.sim.incident(status["deliveries"][0]["incidentId"])) == {}
    assert status["deliveries"][0]["state"] == "Open"
    note = "custom field 'Affected Team' left unset: 'finance' (from label team) is not one of its options"
    assert note in env.condition(ALERTS, NS, NAME)["message"]


def test_an_unknown_custom_field_or_a_misfit_value_makes_the_destination_not_ready(env: Environment) -> None:
    env.start_operator()
    setup(env)
    fields = [{"field": "Data Asset", "from": "assetTable"}, {"field": "Squad", "value": "Data"}]
    env.client.apply(custom_destination(env, fields))
    condition = env.wait_reason(DESTINATIONS, NS, "incidentio", "CustomFieldNotFound")
    assert condition["status"] == "False"
    assert "'Squad' (spec.incident.customFields[1]) does not exist in incident.io" in condition["message"]
    assert "Affected Team (single_select)" in condition["message"]

    env.client.apply(custom_destination(env, [{"field": "Affected Rows", "from": "severity"}]))
    condition = env.wait_reason(DESTINATIONS, NS, "incidentio", "InvalidCustomField")
    assert condition["message"].startswith("spec.incident.customFields[0] (Affected Rows, a numeric field)")


def test_creates_go_ahead_of_a_backlog_of_edits_on_the_same_key(env: Environment) -> None:
    # A small bucket (10, refilled at 2/s) on both sides, so twenty edits make a backlog of several seconds.
    env.sim.config.rate_limit_per_minute, env.sim.config.refill_per_second = 10, 2.0
    env.start_operator("--rate-limit-per-minute", "10", "--rate-limit-refill", "2", "--update-quiet", "1")
    setup(env)
    opened = [f"open-{index}" for index in range(20)]
    for name in opened:
        env.client.apply(o.alert(name))
    for name in opened:
        env.wait_ready(ALERTS, NS, name, timeout=60)
    for name in opened:
        env.client.patch(GROUP_VERSION, ALERTS, NS, name, {"spec": {"description": f"More is known about {name}."}})
    wait_for(lambda: successful(env, "edit_incident"), what="the first edit of the backlog")
    fresh = [f"new-{index}" for index in range(5)]
    for name in fresh:
        env.client.apply(o.alert(name))
    for name in fresh:
        env.wait_ready(ALERTS, NS, name, timeout=60)
    wait_for(lambda: len(successful(env, "edit_incident")) == len(opened), timeout=60, what="every edit made")
    last_create = max(r.at for r in successful(env, "create_incident"))
    after = [r for r in successful(env, "edit_incident") if r.at > last_create]
    # First come, first served, the creates would have gone after the whole backlog (no edit after them).
    assert len(after) >= len(opened) // 4, f"only {len(after)} of {len(opened)} edits went after the creates"
    assert not [r for r in env.sim.requests if r.status == 429]


def successful(env: Environment, operation: str) -> list[Any]:
    return [r for r in env.requests(operation) if r.status < 300]
