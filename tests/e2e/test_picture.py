"""The operator's picture of the cluster and of incident.io stays true when either changes under it (issue 11).

Each test drives the real operator process against the API stand-in and the simulator, and is named
after the behaviour it shows: relists, incidents ended by responders, namespace teardown, uninstall, and
the uninstall order across kinds.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from incidentio_operator.api.alert import FINALIZER as ALERT_FINALIZER
from incidentio_operator.api.destination import DESTINATION_FINALIZER
from incidentio_operator.kubectl.cli import run as kubectl_armor
from incidentio_operator.standins.simulator import CLOSED_STATUS_ID
from tests.e2e import objects as o
from tests.harness import DEMO_KEY, Environment, wait_for

DESTINATIONS, RULES, ALERTS = "incidentiodestinations", "alertrules", "dataalerts"
NS = o.NS


def setup_team(env: Environment, ns: str = NS, *, drift_interval: str | None = None) -> None:
    env.client.apply(o.namespace(ns))
    env.client.apply(o.secret(DEMO_KEY, ns=ns))
    destination = o.destination(env.sim.url, ns=ns)
    if drift_interval:
        destination["spec"]["driftCheck"] = {"interval": drift_interval}
    env.client.apply(destination)
    env.client.apply(o.rule("everything", ["incidentio"], ns=ns))
    env.wait_ready(DESTINATIONS, ns, "incidentio")
    env.wait_ready(RULES, ns, "everything")


def open_incident(env: Environment, name: str, ns: str = NS) -> dict[str, Any]:
    """Trigger an alert and wait for its incident; returns the open delivery."""
    env.client.apply(o.alert(name, ns=ns))
    status = wait_for(
        lambda: (s := env.status(ALERTS, ns, name)) and s.get("incidents") and s,
        what=f"an incident for {ns}/{name}",
    )
    (delivery,) = [d for d in status["deliveries"] if d["epoch"] == status["epoch"]]
    assert delivery["state"] == "Open"
    return dict(delivery)


def delivery_of(env: Environment, name: str, ns: str = NS) -> dict[str, Any]:
    status = env.status(ALERTS, ns, name)
    (delivery,) = [d for d in status.get("deliveries") or () if d["epoch"] == status.get("epoch")]
    return dict(delivery)


def finalizers(env: Environment, plural: str, name: str, ns: str = NS) -> list[str]:
    body = env.get(plural, ns, name) or {}
    return list((body.get("metadata") or {}).get("finalizers") or ())


def namespace_gone(env: Environment, ns: str) -> bool:
    return env.client.get("v1", "namespaces", None, ns) is None


# §1 Deletions missed across a relist.


def test_a_rule_deleted_while_the_watch_was_down_routes_nothing_after_the_410_relist(env: Environment) -> None:
    # kopf hands over nothing from a relist that lists nothing; the sweep's resync notices the rule gone.
    env.start_operator("--sweep-interval", "2")
    setup_team(env)
    wait_for(lambda: env.kube.open_watches(RULES) > 0, what="the rules watch")
    # The reconnect is held while the rule goes and etcd compacts past what the operator saw: when it is
    # served, the resumed watch gets 410 Expired and the operator must list again.
    env.kube.hold_next(1, verb="watch", resource=RULES)
    env.kube.drop_watches(RULES)
    wait_for(lambda: env.kube.held_requests == 1, what="the held reconnect")
    env.client.delete(o.GV, RULES, NS, "everything")
    env.kube.compact()
    lists = env.kube.count(verb="list", resource=RULES)
    env.kube.release_held()
    wait_for(lambda: env.kube.count(verb="list", resource=RULES) > lists, what="the relist after 410")
    wait_for(lambda: "deleted while the watch was down" in env.operator_log, what="the rule forgotten")

    env.client.apply(o.alert("after-the-relist"))
    condition = env.wait_reason(ALERTS, NS, "after-the-relist", "NoMatchingRule")
    assert condition["status"] == "True"
    assert env.incidents() == []


# §2 Incidents that ended in incident.io.


@pytest.mark.parametrize(
    ("category", "said"),
    [
        ("declined", "declined in incident.io"),
        ("merged", "merged in incident.io"),
        ("canceled", "canceled in incident.io"),
        (None, "deleted in incident.io"),
    ],
)
def test_an_incident_ended_by_a_responder_is_recorded_when_its_alert_resolves(
    env: Environment, category: str | None, said: str
) -> None:
    env.start_operator("--delivery-retry-base", "1")
    setup_team(env)
    opened = open_incident(env, "orders")
    if category is None:
        env.sim.delete_incident(opened["incidentId"])
    else:
        env.sim.set_incident_status(opened["incidentId"], category=category)
    env.client.apply(o.alert("orders", state="resolved"))

    wait_for(lambda: delivery_of(env, "orders").get("state") == "Closed", what="the delivery closed")
    delivery = delivery_of(env, "orders")
    assert delivery["reason"] == "EndedInIncidentIo" and said in delivery["message"]
    assert env.condition(ALERTS, NS, "orders")["status"] == "True"
    # Nothing fights the responder: the refused close is not sent again, and no incident reopens.
    closes = len(env.requests("edit_incident"))
    env.client.patch(o.GV, ALERTS, NS, "orders", {"spec": {"description": "edited after the close"}})
    env.wait_ready(ALERTS, NS, "orders")
    assert len(env.requests("edit_incident")) == closes
    assert len([r for r in env.requests("create_incident") if r.status < 300]) == 1
    wait_for(
        lambda: "IncidentEndedInIncidentIo" in {e.get("reason") for e in env.client.events(NS)},
        what="the IncidentEndedInIncidentIo Event",
    )


def test_incidents_ended_while_their_alerts_are_triggered_show_on_the_alerts_and_are_not_reopened(
    env: Environment,
) -> None:
    env.start_operator()
    setup_team(env, drift_interval="1m")
    declined, closed = open_incident(env, "declined"), open_incident(env, "closed")
    env.sim.set_incident_status(declined["incidentId"], category="declined")
    env.sim.set_incident_status(closed["incidentId"], category="closed")
    # The drift check reads each open incident once a minute (the smallest interval the CRD allows).
    for name in ("declined", "closed"):
        wait_for(
            lambda name=name: delivery_of(env, name).get("reason") == "EndedInIncidentIo",  # type: ignore[misc]
            timeout=120,
            what=f"the {name} incident noticed by the drift check",
        )
        delivery = delivery_of(env, name)
        assert delivery["state"] == "Closed" and f"{name} in incident.io" in delivery["message"]
        assert env.condition(ALERTS, NS, name)["status"] == "True"
        # Same trigger epoch, still triggered: an edit to the alert opens nothing new.
        env.client.patch(o.GV, ALERTS, NS, name, {"spec": {"description": "still failing"}})
        env.wait_ready(ALERTS, NS, name)
    assert len(env.incidents(mode="standard")) == 2
    for delivery in (declined, closed):
        reads = [r for r in env.requests("show_incident") if delivery["incidentId"] in r.path]
        assert 1 <= len(reads) <= 2, f"{len(reads)} reads of {delivery['incidentId']} in about a minute"


# §3 Namespace teardown.


def test_a_namespace_deleted_with_its_key_closes_its_incidents_before_it_goes(env: Environment) -> None:
    env.start_operator()
    setup_team(env, "doomed")
    opened = [open_incident(env, name, "doomed") for name in ("a", "b", "c")]
    env.client.delete("v1", "namespaces", None, "doomed")

    wait_for(lambda: namespace_gone(env, "doomed"), timeout=60, what="the namespace to finish deleting")
    for delivery in opened:
        assert env.sim.incident(delivery["incidentId"])["incident_status"]["id"] == CLOSED_STATUS_ID
    # Events into a terminating namespace are refused (403) and not retried in a loop.
    refused = [c for c in env.kube.requests if c.resource == "events" and c.status == 403]
    assert len(refused) <= 10, f"{len(refused)} refused Event writes"
    assert DEMO_KEY not in env.operator_log


# §4 Uninstall.


def test_with_the_operator_gone_a_namespace_of_closed_alerts_deletes(env: Environment) -> None:
    operator = env.start_operator()
    setup_team(env, "finished")
    open_incident(env, "orders", "finished")
    env.client.apply(o.alert("orders", ns="finished", state="resolved"))
    env.wait_reason(ALERTS, "finished", "orders", "Closed")
    wait_for(lambda: ALERT_FINALIZER not in finalizers(env, ALERTS, "orders", "finished"), what="alert finalizer")
    wait_for(
        lambda: DESTINATION_FINALIZER not in finalizers(env, DESTINATIONS, "incidentio", "finished"),
        what="destination finalizer released",
    )
    operator.stop()

    env.client.delete("v1", "namespaces", None, "finished")
    wait_for(lambda: namespace_gone(env, "finished"), timeout=30, what="the namespace to finish deleting")


def test_with_the_operator_gone_uninstall_lists_what_stays_open_and_releases_the_finalizers(
    env: Environment,
) -> None:
    operator = env.start_operator()
    setup_team(env, "abandoned")
    opened = open_incident(env, "orders", "abandoned")
    wait_for(lambda: ALERT_FINALIZER in finalizers(env, ALERTS, "orders", "abandoned"), what="alert finalizer")
    operator.stop()
    env.client.delete("v1", "namespaces", None, "abandoned")
    wait_for(lambda: env.get(RULES, "abandoned", "everything") is None, what="the teardown to reach the holders")
    assert not namespace_gone(env, "abandoned")

    def armor(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        code = kubectl_armor(["uninstall", *argv, "--kubeconfig", str(env.kubeconfig)], out, io.StringIO())
        return code, out.getvalue()

    code, listing = armor()
    assert code == 1
    assert opened["reference"] in listing and "DataAlert abandoned/orders: held by" in listing
    assert "IncidentIoDestination abandoned/incidentio: held by" in listing
    assert not namespace_gone(env, "abandoned")
    code, released = armor("--release-finalizers")
    assert code == 0 and "DataAlert abandoned/orders: released" in released
    wait_for(lambda: namespace_gone(env, "abandoned"), what="the namespace to finish deleting")
    # Released, not closed: the incident stays open in incident.io for a person to close, as listed.
    assert env.sim.incident(opened["incidentId"])["incident_status"]["category"] != "closed"
    assert armor()[0] == 0


# §10 Uninstall order across kinds.


def test_a_destination_deleted_before_its_alerts_stays_until_their_incidents_are_closed(env: Environment) -> None:
    env.start_operator()
    setup_team(env)
    opened = open_incident(env, "orders")
    wait_for(lambda: DESTINATION_FINALIZER in finalizers(env, DESTINATIONS, "incidentio"), what="its finalizer")
    env.client.delete(o.GV, DESTINATIONS, NS, "incidentio")

    condition = env.wait_reason(DESTINATIONS, NS, "incidentio", "Deleting")
    assert "orders" in condition["message"]
    env.client.apply(o.alert("orders", state="resolved"))
    env.wait_reason(ALERTS, NS, "orders", "Closed")
    assert env.sim.incident(opened["incidentId"])["incident_status"]["id"] == CLOSED_STATUS_ID
    wait_for(lambda: env.get(DESTINATIONS, NS, "incidentio") is None, what="the destination to go")


# §9 A delete seen only as DELETED.


def test_an_alert_replaced_without_its_finalizer_and_deleted_at_once_has_its_incident_closed(
    env: Environment,
) -> None:
    env.start_operator()
    setup_team(env)
    opened = open_incident(env, "orders")
    wait_for(lambda: ALERT_FINALIZER in finalizers(env, ALERTS, "orders"), what="the alert's finalizer")
    # The operator's attempt to put its finalizer back is held until the object is already gone.
    env.kube.hold_next(5, verb="patch", resource=ALERTS, subresource="")
    body = env.get(ALERTS, NS, "orders") or {}
    replaced = {**body, "metadata": {**body["metadata"], "finalizers": []}}
    replaced.pop("status", None)
    env.client.update(replaced)
    env.client.delete(o.GV, ALERTS, NS, "orders")
    assert env.get(ALERTS, NS, "orders") is None
    env.kube.release_held()

    wait_for(
        lambda: env.sim.incident(opened["incidentId"])["incident_status"]["id"] == CLOSED_STATUS_ID,
        what="the orphaned incident closed",
    )
    # The simulator records the close before the operator has its response and logs it.
    wait_for(
        lambda: any(
            "dataalert team-a/orders (gone): Incident" in line and line.endswith("closed (team-a/incidentio)")
            for line in env.operator_log.splitlines()
        ),
        what="the orphan's close in the operator log",
    )
