"""Retention of settled DataAlerts end to end: deleted once their TTL ran out, on the operator's clock."""

from __future__ import annotations

from tests.e2e import objects as o
from tests.harness import DEMO_KEY, GROUP_VERSION, Environment, wait_for

DESTINATIONS, ALERTS = "incidentiodestinations", "dataalerts"
NS = o.NS
HOUR = 3600


def test_settled_alerts_are_deleted_after_their_ttl_and_one_holding_an_incident_never_is(env: Environment) -> None:
    first = env.start_operator()
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    env.client.apply(o.destination(env.sim.url))
    env.client.apply(o.rule("breaking", ["incidentio"], eventTypes=["schema_change"]))
    env.wait_ready(DESTINATIONS, NS, "incidentio")
    for name in ("settled", "still-open", "operator-default", "retriggered"):
        body = o.alert(name)
        if name != "operator-default":
            body["spec"]["ttlSecondsAfterSettled"] = HOUR
        env.client.apply(body)
        env.wait_ready(ALERTS, NS, name)
    for name in ("settled", "operator-default", "retriggered"):
        env.client.patch(GROUP_VERSION, ALERTS, NS, name, {"spec": {"state": "resolved"}})
        env.wait_reason(ALERTS, NS, name, "Closed")
    assert env.status(ALERTS, NS, "retriggered")["deleteAfter"]
    env.client.patch(GROUP_VERSION, ALERTS, NS, "retriggered", {"spec": {"state": "triggered"}})
    wait_for(
        lambda: (s := env.status(ALERTS, NS, "retriggered")).get("epoch") == 2 and "deleteAfter" not in s,
        what="the re-triggered alert no longer settled",
    )

    settled = env.status(ALERTS, NS, "settled")
    assert settled["settledAt"] and settled["deleteAfter"] > settled["settledAt"]
    assert "deleteAfter" not in env.status(ALERTS, NS, "operator-default"), "no TTL of its own, none by default"
    assert "deleteAfter" not in env.status(ALERTS, NS, "still-open")

    # An hour and more later, by the operator's clock; and now a default for alerts that set none.
    first.stop()
    env.start_operator("--clock-offset", str(HOUR + 60), "--settled-alert-ttl", "0")
    wait_for(lambda: env.get(ALERTS, NS, "settled") is None, what="the settled alert deleted after its TTL")
    wait_for(lambda: env.get(ALERTS, NS, "operator-default") is None, what="deleted by the operator's default")
    for name in ("still-open", "retriggered"):
        kept = env.get(ALERTS, NS, name)
        assert kept is not None and "deleteAfter" not in (kept.get("status") or {})
        assert [d["state"] for d in kept["status"]["deliveries"]][-1] == "Open"
    # The operator logs a deletion once the API server has answered it: after the test can see it.
    wait_for(lambda: "dataalert team-a/settled deleted: settled at" in env.operator_log, what="the deletion in the log")
