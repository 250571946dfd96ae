"""The alert → incident lifecycle end to end: the real operator process, the API stand-in, the simulator."""

from __future__ import annotations

from pathlib import Path

from incidentio_operator.standins.simulator import CLOSED_STATUS_ID, INVESTIGATING_STATUS_ID, SEVERITY_CRITICAL_ID
from tests.e2e import objects as o
from tests.harness import DEMO_KEY, EXAMPLES, Environment, wait_for

DESTINATIONS, RULES, ALERTS = "incidentiodestinations", "alertrules", "dataalerts"
NS = o.NS


def setup_team(env: Environment, *, closed: str | None = CLOSED_STATUS_ID) -> None:
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    env.client.apply(o.destination(env.sim.url, closed_status_id=closed))
    env.client.apply(o.rule("breaking", ["incidentio"], eventTypes=["schema_change"]))
    env.wait_ready(DESTINATIONS, NS, "incidentio")


def open_delivery(env: Environment, name: str) -> dict[str, object]:
    status = env.wait_ready(ALERTS, NS, name)
    (delivery,) = [d for d in status["deliveries"] if d["epoch"] == status["epoch"]]
    assert delivery["state"] == "Open"
    return dict(delivery)


def test_examples_applied_give_exactly_the_expected_incidents(env: Environment) -> None:
    env.start_operator()
    env.apply_examples()
    ns = "data-platform"
    destination = env.wait_ready(DESTINATIONS, ns, "incidentio-data-platform")
    assert destination["lastTest"]["identityName"] == "demo"
    assert destination["severityIds"]["map"]["critical"] == SEVERITY_CRITICAL_ID
    env.wait_ready(RULES, ns, "production-breaking-changes")
    env.wait_ready(RULES, ns, "critical-production-sla")
    orders = env.wait_ready(ALERTS, ns, "orders-column-removed")
    freshness = env.wait_ready(ALERTS, ns, "events-freshness")
    dev = env.wait_reason(ALERTS, ns, "dev-column-removed", "NoMatchingRule")
    assert dev["status"] == "True"
    assert env.status(ALERTS, ns, "dev-column-removed").get("deliveries") == []
    assert orders["matchedRules"] == ["critical-production-sla", "production-breaking-changes"]
    assert freshness["matchedRules"] == ["critical-production-sla"]
    incidents = {i["id"]: i for i in env.incidents()}
    assert len(incidents) == 2
    opened = incidents[orders["deliveries"][0]["incidentId"]]
    assert opened["name"] == "[AnomalyArmor] Column customer_id removed from orders"
    assert opened["severity"]["id"] == SEVERITY_CRITICAL_ID
    assert opened["mode"] == "standard" and opened["visibility"] == "public"
    assert orders["incidents"] == opened["reference"]
    # Verify mode creates nothing: the only creates are the two alerts'.
    assert len([r for r in env.requests("create_incident") if r.status < 300]) == 2
    env.apply_file(EXAMPLES / "later" / "orders-column-removed-resolved.yaml")
    env.wait_reason(ALERTS, ns, "orders-column-removed", "Closed")
    closed = env.sim.incident(opened["id"])
    assert closed["incident_status"]["id"] == CLOSED_STATUS_ID


def test_destination_problems_are_visible_and_heal_without_touching_the_destination(env: Environment) -> None:
    env.start_operator("--test-retry-base", "1")
    env.client.apply(o.namespace())
    env.client.apply(o.destination(env.sim.url))
    condition = env.wait_reason(DESTINATIONS, NS, "incidentio", "NoAPIKey")
    assert condition["message"] == "No API key configured" and condition["status"] == "False"

    env.client.apply(o.secret(""))
    wait_for(lambda: env.status(DESTINATIONS, NS, "incidentio").get("secretVersion"), what="secret seen")
    assert env.condition(DESTINATIONS, NS, "incidentio")["message"] == "No API key configured"

    env.client.apply(o.secret("not-a-valid-key"))
    condition = env.wait_reason(DESTINATIONS, NS, "incidentio", "Unauthorized")
    assert condition["message"] == "HTTP 401: Unauthorized"

    env.sim.set_key("viewer-only", name="viewer", roles=["viewer"])
    env.client.apply(o.secret("viewer-only"))
    condition = env.wait_reason(DESTINATIONS, NS, "incidentio", "Forbidden")
    assert condition["message"].startswith("HTTP 403: Forbidden")
    assert "incident_creator" in condition["message"]

    env.client.apply(o.secret(DEMO_KEY))
    env.wait_ready(DESTINATIONS, NS, "incidentio")

    env.client.apply(o.destination(env.sim.url, closed_status_id=INVESTIGATING_STATUS_ID))
    condition = env.wait_reason(DESTINATIONS, NS, "incidentio", "InvalidClosedStatus")
    assert INVESTIGATING_STATUS_ID in condition["message"] and "'live'" in condition["message"]
    env.client.apply(o.destination(env.sim.url, closed_status_id="01ZZZZZZZZZZZZZZZZZZZZZZZZ"))
    condition = env.wait_message(DESTINATIONS, NS, "incidentio", "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert condition["reason"] == "InvalidClosedStatus" and "not an incident status" in condition["message"]
    env.client.apply(o.destination(env.sim.url, severity={"map": {"critical": "Catastrophic"}}))
    condition = env.wait_reason(DESTINATIONS, NS, "incidentio", "SeverityNotFound")
    assert "Catastrophic" in condition["message"] and "spec.incident.severity.map.critical" in condition["message"]
    # kubectl apply would drop the field; a merge patch needs the explicit null.
    env.client.patch(o.GV, DESTINATIONS, NS, "incidentio", {"spec": {"incident": {"severity": None}}})
    env.wait_ready(DESTINATIONS, NS, "incidentio")
    assert DEMO_KEY not in env.operator_log


def test_two_rules_naming_one_destination_open_one_incident_naming_both(env: Environment) -> None:
    env.start_operator()
    setup_team(env)
    env.client.apply(o.rule("critical-anything", ["incidentio"], severities=["critical"]))
    env.client.apply(o.alert("orders"))
    delivery = open_delivery(env, "orders")
    assert delivery["rules"] == ["breaking", "critical-anything"]
    (incident,) = env.incidents()
    assert "Rules: breaking, critical-anything" in incident["summary"]
    assert f"kubectl -n {NS} get dataalert orders" in incident["summary"]
    assert len(env.requests("create_incident")) == 1


def test_resolve_and_dismiss_close_with_the_closed_status(env: Environment) -> None:
    env.start_operator()
    setup_team(env)
    for name in ("resolved-one", "dismissed-one"):
        env.client.apply(o.alert(name))
    first, second = open_delivery(env, "resolved-one"), open_delivery(env, "dismissed-one")
    env.client.apply(o.alert("resolved-one", state="resolved"))
    env.client.apply(o.alert("dismissed-one", state="dismissed"))
    for name, delivery in (("resolved-one", first), ("dismissed-one", second)):
        condition = env.wait_reason(ALERTS, NS, name, "Closed")
        assert condition["status"] == "True"
        (after,) = env.status(ALERTS, NS, name)["deliveries"]
        assert after["state"] == "Closed" and after["closedAt"]
        assert env.sim.incident(str(delivery["incidentId"]))["incident_status"]["category"] == "closed"
    closes = env.requests("edit_incident")
    assert len(closes) == 2
    assert all(r.body["incident"] == {"incident_status_id": CLOSED_STATUS_ID} for r in closes)


def test_without_closed_status_the_incident_is_left_open(env: Environment) -> None:
    env.start_operator()
    setup_team(env, closed=None)
    env.client.apply(o.alert("orders"))
    delivery = open_delivery(env, "orders")
    env.client.apply(o.alert("orders", state="resolved"))
    condition = env.wait_reason(ALERTS, NS, "orders", "LeftOpen")
    assert "no closedStatusId" in condition["message"]
    assert env.status(ALERTS, NS, "orders")["deliveries"][0]["state"] == "LeftOpen"
    assert env.sim.incident(str(delivery["incidentId"]))["incident_status"]["category"] == "live"
    assert env.requests("edit_incident") == []


def test_retriggered_after_resolve_opens_a_second_incident_in_a_new_epoch(env: Environment) -> None:
    env.start_operator()
    setup_team(env)
    env.client.apply(o.alert("orders"))
    first = open_delivery(env, "orders")
    env.client.apply(o.alert("orders", state="resolved"))
    env.wait_reason(ALERTS, NS, "orders", "Closed")
    env.client.apply(o.alert("orders", state="triggered"))
    second = wait_for(
        lambda: [
            d
            for d in env.status(ALERTS, NS, "orders").get("deliveries", ())
            if d["epoch"] == 2 and d["state"] == "Open"
        ],
        what="second epoch open",
    )[0]
    assert second["idempotencyKey"] != first["idempotencyKey"]
    assert second["incidentId"] != first["incidentId"]
    assert env.status(ALERTS, NS, "orders")["epoch"] == 2
    assert len(env.incidents()) == 2


def test_alert_waiting_for_its_destination_is_delivered_once_it_becomes_ready(env: Environment) -> None:
    env.start_operator("--test-retry-base", "1")
    env.client.apply(o.namespace())
    env.client.apply(o.destination(env.sim.url))
    env.client.apply(o.rule("breaking", ["incidentio"]))
    env.client.apply(o.alert("early"))
    condition = env.wait_message(ALERTS, NS, "early", "No API key configured")
    assert condition["reason"] == "WaitingForDestination" and "IncidentIoDestination incidentio" in condition["message"]
    assert env.incidents() == []
    env.client.apply(o.secret(DEMO_KEY))
    open_delivery(env, "early")
    assert len(env.incidents()) == 1


def test_deleting_an_alert_closes_its_incident_before_it_goes(env: Environment) -> None:
    env.start_operator()
    setup_team(env)
    env.client.apply(o.alert("doomed"))
    delivery = open_delivery(env, "doomed")
    body = env.get(ALERTS, NS, "doomed") or {}
    assert "alerting.armor.dev/close-incidents" in body["metadata"]["finalizers"]
    env.client.delete(o.GV, ALERTS, NS, "doomed")
    wait_for(lambda: env.get(ALERTS, NS, "doomed") is None, what="alert gone")
    assert env.sim.incident(str(delivery["incidentId"]))["incident_status"]["id"] == CLOSED_STATUS_ID


def test_a_rules_matched_count_follows_alerts_that_come_go_and_arrive_while_it_is_down(env: Environment) -> None:
    first = env.start_operator("--sweep-interval", "1")
    setup_team(env)
    for name in ("one", "two", "three"):
        env.client.apply(o.alert(name))
    for name in ("one", "two", "three"):
        open_delivery(env, name)
    wait_for(lambda: env.status(RULES, NS, "breaking").get("matchedAlerts") == 3, what="3 matched")

    env.client.delete(o.GV, ALERTS, NS, "two")
    wait_for(lambda: env.get(ALERTS, NS, "two") is None, what="alert gone")
    wait_for(lambda: env.status(RULES, NS, "breaking").get("matchedAlerts") == 2, what="2 matched after a delete")

    # Alerts that arrive while the operator is down are counted once the restarted operator has them all,
    # however the rule's first event and the alerts' list interleave.
    first.kill()
    for n in range(40):
        env.kube.put_object(o.alert(f"late-{n:02d}"))
    env.start_operator("--sweep-interval", "1", "--list-page-size", "5")
    wait_for(
        lambda: env.status(RULES, NS, "breaking").get("matchedAlerts") == 42,
        timeout=60,
        what="42 matched after the restart",
    )


def test_create_test_incident_opens_and_closes_a_test_incident(env: Environment) -> None:
    env.start_operator()
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    env.client.apply(o.destination(env.sim.url, on_create="CreateTestIncident"))
    status = env.wait_ready(DESTINATIONS, NS, "incidentio")
    (incident,) = env.incidents()
    assert incident["mode"] == "test"
    assert status["lastTest"]["message"] == f"Success! Incident created: {incident['reference']}"
    assert status["lastTest"]["incidentReference"] == incident["reference"]
    assert env.sim.incident(incident["id"])["incident_status"]["id"] == CLOSED_STATUS_ID


def test_test_requested_annotation_runs_the_test_again(env: Environment) -> None:
    env.start_operator()
    setup_team(env)
    identity_calls = len(env.requests("identity"))
    env.client.patch(
        o.GV,
        DESTINATIONS,
        NS,
        "incidentio",
        {"metadata": {"annotations": {"alerting.armor.dev/test-requested-at": "now-1"}}},
    )
    wait_for(
        lambda: env.status(DESTINATIONS, NS, "incidentio").get("lastTest", {}).get("requestedAt") == "now-1",
        what="test re-run",
    )
    assert len(env.requests("identity")) == identity_calls + 1


def test_operator_started_before_its_crds_waits_for_them(tmp_path: Path) -> None:
    from incidentio_operator.offline.schema import load_crds
    from incidentio_operator.standins.kubesim import KubeApiStandIn, StandInClient
    from incidentio_operator.standins.servers import BackgroundLoop
    from tests.harness import Operator

    loop = BackgroundLoop("no-crds")
    kube = KubeApiStandIn()
    loop.run(kube.start())
    operator = Operator(kube.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "operator.log")
    client = StandInClient(kube.url)
    try:
        wait_for(lambda: "CRDs are not installed" in operator.log, what="the operator to notice the missing CRDs")
        assert operator.process.poll() is None
        for crd in load_crds():
            client.create(crd)
        client.apply(o.namespace())
        client.apply(o.destination("http://127.0.0.1:9"))
        status = wait_for(lambda: (client.get(o.GV, DESTINATIONS, NS, "incidentio") or {}).get("status"), what="status")
        assert [c["reason"] for c in status["conditions"] if c["type"] == "Ready"] == ["NoAPIKey"]
    finally:
        operator.stop()
        client.close()
        loop.run(kube.stop())
        loop.close()
