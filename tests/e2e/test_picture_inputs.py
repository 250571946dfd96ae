"""The operator's picture, continued (issue 11): keys that cannot be sent, payload bounds, Secrets, shards.

Each test drives the real operator process against the API stand-in and the simulator.
"""

from __future__ import annotations

from typing import Any

from incidentio_operator.api.alert import OWNER_LABEL
from incidentio_operator.decisions.payloads import NAME_LIMIT, SUMMARY_LIMIT
from tests.e2e import objects as o
from tests.e2e.test_picture import ALERTS, DESTINATIONS, NS, delivery_of, open_incident, setup_team
from tests.harness import DEMO_KEY, Environment, iter_strings, wait_for

# §6 Keys that cannot be sent: what some editors and copy-pastes put into a Secret.
UNSENDABLE = {
    "bom": ("\ufeff" + DEMO_KEY, "byte-order mark", 0),
    "zero-width": (DEMO_KEY[:5] + "\u200b" + DEMO_KEY[5:], "zero-width", 5),
    "non-ascii": (DEMO_KEY[:3] + "é" + DEMO_KEY[4:], "non-ASCII", 3),
    "line-break": (DEMO_KEY[:7] + "\n" + DEMO_KEY[7:], "line break", 7),
}


def team_with_key(env: Environment, ns: str, key: str) -> None:
    env.client.apply(o.namespace(ns))
    env.client.apply(o.secret(key, ns=ns))
    env.client.apply(o.destination(env.sim.url, ns=ns))
    env.client.apply(o.rule("everything", ["incidentio"], ns=ns))


def test_keys_that_cannot_be_sent_make_the_destination_invalid_naming_the_character_never_the_key(
    env: Environment,
) -> None:
    env.start_operator()
    for ns, (key, _, _) in UNSENDABLE.items():
        team_with_key(env, ns, key)
    team_with_key(env, "trailing-newline", DEMO_KEY + "\n")

    for ns, (_, kind, position) in UNSENDABLE.items():
        condition = env.wait_reason(DESTINATIONS, ns, "incidentio", "InvalidAPIKey")
        assert condition["status"] == "False"
        assert kind in condition["message"] and f"position {position}" in condition["message"]
        # The Event is posted in the background after the status write: poll for it.
        warnings = wait_for(
            lambda ns=ns: [e for e in env.client.events(ns) if e.get("reason") == "InvalidAPIKey"],  # type: ignore[misc]
            what=f"the InvalidAPIKey Event in {ns}",
        )
        assert warnings[0]["type"] == "Warning"
    # Leading and trailing whitespace is forgiven, as before.
    env.wait_ready(DESTINATIONS, "trailing-newline", "incidentio")
    everything: list[Any] = [env.get(DESTINATIONS, ns, "incidentio") for ns in UNSENDABLE]
    everything += [list(env.client.events(ns)) for ns in UNSENDABLE]
    for value in [*iter_strings(everything), env.operator_log]:
        assert all(key not in value and key.strip() not in value for key, _, _ in UNSENDABLE.values())


def test_a_rotation_to_a_key_that_cannot_be_sent_holds_new_alerts_visibly_until_it_is_fixed(env: Environment) -> None:
    env.start_operator()
    setup_team(env)
    open_incident(env, "before")
    env.client.apply(o.secret(UNSENDABLE["bom"][0]))
    env.wait_reason(DESTINATIONS, NS, "incidentio", "InvalidAPIKey")

    env.client.apply(o.alert("during"))
    condition = env.wait_reason(ALERTS, NS, "during", "WaitingForDestination")
    assert "byte-order mark" in condition["message"]
    assert len(env.incidents()) == 1
    env.client.apply(o.secret(DEMO_KEY))
    wait_for(lambda: env.status(ALERTS, NS, "during").get("incidents"), what="the held alert delivered")
    assert len([r for r in env.requests("create_incident") if r.status < 300]) == 2


# §7 Bounded payloads.


def test_eighty_changes_and_a_long_description_stay_within_incident_ios_limits(env: Environment) -> None:
    env.start_operator()
    setup_team(env)
    description = "The nightly load rewrote the table. " * 40  # 1,440 characters
    body = o.alert("wide-table")
    body["spec"]["title"] = "T" * 250
    body["spec"]["description"] = description
    body["spec"]["changes"] = [
        {"type": "column_removed", "column": f"customer_lifetime_value_attribute_{n:02d}"} for n in range(80)
    ]
    env.client.apply(body)
    wait_for(lambda: env.status(ALERTS, NS, "wide-table").get("incidents"), what="the incident")

    (incident,) = env.incidents()
    summary, name = incident["summary"], incident["name"]
    assert len(summary) <= SUMMARY_LIMIT and len(name) <= NAME_LIMIT
    assert summary.startswith(description.strip())
    assert "attribute_00" in summary and "attribute_79" not in summary
    assert " more" in summary


# §8 Only the referenced Secrets reach the operator.


def test_unrelated_secrets_never_reach_the_operator(env: Environment) -> None:
    env.client.apply(o.namespace("helm-releases"))
    for n in range(20):
        blob = {"release": "x" * 100_000}
        env.client.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"sh.helm.release.v1.app-{n}.v1", "namespace": "helm-releases"},
                "stringData": blob,
            }
        )
    env.kube.clear_requests()
    env.start_operator()
    setup_team(env)
    open_incident(env, "orders")
    env.client.apply(o.secret("rotated-but-wrong"))
    env.wait_reason(DESTINATIONS, NS, "incidentio", "Unauthorized")

    sent = env.kube.sent("secrets")
    assert set(sent.names) == {f"{NS}/incidentio-key"}
    assert env.kube.count(verb="list", resource="secrets") == 0
    assert env.kube.count(verb="watch", resource="secrets") == 0


# §5 Alerts that leave the operator's view.


def owner(env: Environment, name: str) -> str:
    body: dict[str, Any] = env.get(ALERTS, NS, name) or {}
    return str((body.get("metadata") or {}).get("labels", {}).get(OWNER_LABEL, ""))


def test_an_alert_moved_between_shards_is_finished_once_by_a_replica(env: Environment) -> None:
    env.start_operator("--shard-label", "shard=a")
    env.start_operator("--shard-label", "shard=b")
    setup_team(env)

    for name in ("leaves", "moves"):
        env.client.apply(o.alert(name, labels={"shard": "a"}))
        wait_for(lambda name=name: env.status(ALERTS, NS, name).get("incidents"), what=f"{name} opened")  # type: ignore[misc]
    owner_a = owner(env, "leaves")
    assert owner_a.startswith("shard-")

    # Out of every shard: replica a keeps what it opened, opens nothing new, and closes on resolve.
    env.client.patch(o.GV, ALERTS, NS, "leaves", {"metadata": {"labels": {"shard": "nobody"}}})
    env.wait_reason(ALERTS, NS, "leaves", "OutsideShard")
    env.client.apply(o.alert("leaves", state="resolved", labels={"shard": "nobody"}))
    wait_for(lambda: delivery_of(env, "leaves").get("state") == "Closed", what="leaves closed")

    # Into shard b: replica b takes it over, and its resolve is closed once.
    env.client.patch(o.GV, ALERTS, NS, "moves", {"metadata": {"labels": {"shard": "b"}}})
    wait_for(lambda: owner(env, "moves") not in ("", owner_a), what="replica b taking over")
    env.client.apply(o.alert("moves", state="resolved", labels={"shard": "b"}))
    wait_for(lambda: delivery_of(env, "moves").get("state") == "Closed", what="moves closed")

    assert len([r for r in env.requests("create_incident") if r.status < 300]) == 2
    closes = [r for r in env.requests("edit_incident") if r.status < 300]
    assert len(closes) == 2
