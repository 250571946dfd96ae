"""Exactly once across crashes: the operator SIGKILLed at each dangerous point, then restarted with no memory."""

from __future__ import annotations

from typing import Any

import pytest

from incidentio_operator.standins.simulator import CLOSED_STATUS_ID
from tests.e2e import objects as o
from tests.harness import (
    DEMO_KEY,
    GROUP_VERSION,
    Books,
    Environment,
    assert_secret_nowhere,
    scaled,
    wait_for,
    watch_faults,
)

DESTINATIONS, RULES, ALERTS = "incidentiodestinations", "alertrules", "dataalerts"
NS = o.NS
# A crash leaves no timer behind; the restarted operator must find the work from the statuses alone.
FAST = ("--delivery-retry-base", "0.5", "--test-retry-base", "0.5", "--sweep-interval", "2")


def setup_team(env: Environment) -> None:
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    env.client.apply(o.destination(env.sim.url))
    env.client.apply(o.rule("breaking", ["incidentio"]))
    env.wait_ready(DESTINATIONS, NS, "incidentio")


def only_delivery(env: Environment, name: str) -> dict[str, Any]:
    deliveries = env.status(ALERTS, NS, name).get("deliveries") or []
    return dict(deliveries[0]) if len(deliveries) == 1 else {}


def creates(env: Environment) -> list[Any]:
    return [r for r in env.requests("create_incident") if (r.body or {}).get("mode") != "test"]


def alerts_where(env: Environment, predicate: Any) -> list[dict[str, Any]]:
    return [body for body in env.client.list(GROUP_VERSION, ALERTS, NS) if predicate(body.get("status") or {})]


def reason(status: dict[str, Any]) -> str:
    return next((str(c.get("reason")) for c in status.get("conditions") or () if c.get("type") == "Ready"), "")


@pytest.mark.timeout(90)
def test_killed_while_the_create_is_in_flight_the_restart_resends_the_same_key(env: Environment) -> None:
    faults = watch_faults(env)
    first = env.start_operator(*FAST, "--incidentio-timeout", "30")
    setup_team(env)
    faults.hang_next(1, seconds=3, operation="create_incident")
    env.client.apply(o.alert("orders"))
    wait_for(lambda: ("create_incident", "hang") in faults.taken, what="the create call in flight")
    first.kill()
    pending = only_delivery(env, "orders")
    # The key was on record before the call went out.
    assert pending["state"] == "Pending" and pending["attempts"] == 1 and pending["idempotencyKey"]

    env.start_operator(*FAST)
    delivered = wait_for(lambda: (d := only_delivery(env, "orders")) and d["state"] == "Open" and d, what="Open")
    assert delivered["idempotencyKey"] == pending["idempotencyKey"]
    wait_for(lambda: len(creates(env)) == 2, what="the hung create answered too")
    assert {r.body["idempotency_key"] for r in creates(env)} == {pending["idempotencyKey"]}
    books = Books(env, [NS])
    assert (books.created, books.duplicates, books.disagreements()) == (1, 0, [])
    assert_secret_nowhere(env, DEMO_KEY)


@pytest.mark.timeout(90)
def test_killed_after_the_create_took_effect_before_the_status_was_written(env: Environment) -> None:
    first = env.start_operator(*FAST)
    setup_team(env)
    env.sim.faults.slow_next(1, seconds=3, operation="create_incident")
    env.client.apply(o.alert("orders"))
    wait_for(lambda: only_delivery(env, "orders").get("attempts") == 1, what="Pending written")
    # The status write that would record the incident is held, so the kill lands before it.
    env.kube.delay_next(1, 60, verb="patch", resource=ALERTS, subresource="status")
    wait_for(lambda: len(env.incidents()) == 1, what="the incident created in incident.io")
    first.kill()
    assert only_delivery(env, "orders")["state"] == "Pending"

    env.start_operator(*FAST)
    delivered = wait_for(lambda: (d := only_delivery(env, "orders")) and d["state"] == "Open" and d, what="Open")
    (incident,) = env.incidents()
    assert delivered["incidentId"] == incident["id"] and delivered["reference"] == incident["reference"]
    assert len(creates(env)) == 2, "the restart re-sends the create once, with the same key"
    books = Books(env, [NS])
    assert (books.created, books.duplicates, books.disagreements()) == (1, 0, [])
    assert_secret_nowhere(env, DEMO_KEY)


@pytest.mark.timeout(90)
def test_killed_after_the_close_took_effect_before_the_status_was_written(env: Environment) -> None:
    first = env.start_operator(*FAST)
    setup_team(env)
    env.client.apply(o.alert("orders"))
    opened = wait_for(lambda: (d := only_delivery(env, "orders")) and d["state"] == "Open" and d, what="Open")
    # A close needs no status write before its call (the incident ID is the record), so the next
    # status write is the one recording the close: hold it, so the kill lands before it.
    env.kube.delay_next(1, 60, verb="patch", resource=ALERTS, subresource="status")
    env.sim.faults.slow_next(1, seconds=1, operation="edit_incident")
    env.client.apply(o.alert("orders", state="resolved"))
    wait_for(
        lambda: env.sim.incident(str(opened["incidentId"]))["incident_status"]["id"] == CLOSED_STATUS_ID,
        what="the incident closed in incident.io",
    )
    first.kill()
    assert only_delivery(env, "orders")["state"] in ("Open", "Closing")

    env.start_operator(*FAST)
    env.wait_reason(ALERTS, NS, "orders", "Closed")
    closed = only_delivery(env, "orders")
    assert closed["state"] == "Closed" and closed["incidentId"] == opened["incidentId"]
    # The second close of an incident already closed is harmless; what counts is nothing stays open.
    assert len(env.requests("edit_incident")) == 2
    books = Books(env, [NS])
    assert (books.created, books.duplicates, books.open_incidents(), books.disagreements()) == (1, 0, [], [])


@pytest.mark.timeout(240)
def test_killed_in_the_middle_of_bursts_of_triggers_and_resolves(env: Environment) -> None:
    count = scaled(60, 300)
    first = env.start_operator(*FAST)
    setup_team(env)
    # Every answer takes a second, so incidents open in waves (the operator keeps a few calls in flight
    # per destination) and the kill lands between waves, with calls in flight and most still to go.
    env.sim.faults.slow_next(count, seconds=1.0)
    for n in range(count):
        env.client.apply(o.alert(f"burst-{n:04d}"))
    wait_for(lambda: len(env.incidents()) >= count // 3, timeout=60, what="a third of the incidents opened")
    first.kill()
    assert len(env.incidents()) < count, "the kill must land mid-burst"

    second = env.start_operator(*FAST)
    wait_for(
        lambda: len(alerts_where(env, lambda s: reason(s) == "Delivered")) == count,
        timeout=120,
        what=f"all {count} alerts Delivered",
    )
    books = Books(env, [NS])
    assert (books.created, books.duplicates, books.disagreements()) == (count, 0, [])

    env.sim.faults.clear()
    env.sim.faults.slow_next(count, seconds=1.0)
    for n in range(count):
        env.client.patch(o.GV, ALERTS, NS, f"burst-{n:04d}", {"spec": {"state": "resolved"}})
    wait_for(lambda: len(env.incidents()) - len(Books(env, [NS]).open_incidents()) >= count // 3, timeout=60)
    second.kill()
    assert Books(env, [NS]).open_incidents(), "the kill must land mid-burst"

    env.start_operator(*FAST)
    wait_for(
        lambda: len(alerts_where(env, lambda s: reason(s) == "Closed")) == count,
        timeout=120,
        what=f"all {count} alerts Closed",
    )
    books = Books(env, [NS])
    assert (books.created, books.duplicates, books.open_incidents(), books.disagreements()) == (count, 0, [], [])
    assert_secret_nowhere(env, DEMO_KEY)


@pytest.mark.timeout(240)
def test_restart_with_many_objects_present_sends_nothing_twice(env: Environment) -> None:
    count = scaled(100, 500)
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    env.client.apply(o.destination(env.sim.url))
    env.client.apply(o.rule("breaking", ["incidentio"]))
    for n in range(count):
        env.kube.put_object(o.alert(f"preloaded-{n:04d}"))
    first = env.start_operator(*FAST)
    wait_for(
        lambda: len(alerts_where(env, lambda s: reason(s) == "Delivered")) == count,
        timeout=180,
        what=f"all {count} preloaded alerts Delivered",
    )
    first.kill()

    since = len(env.kube.requests)
    # The restart lists the alerts in pages, as a real API server serves them with limit/continue.
    env.start_operator(*FAST, "--list-page-size", "7")
    # Applied after the restart, so it is looked at after every object the restart found.
    env.client.apply(o.alert("sentinel"))
    env.wait_ready(ALERTS, NS, "sentinel", timeout=60)
    assert len(creates(env)) == count + 1
    pages = [c.path for c in list(env.kube.requests)[since:] if c.resource == ALERTS and c.verb == "list"]
    assert len(pages) >= -(-count // 7) and all("limit=7" in path for path in pages), pages
    assert sum("continue=" in path for path in pages) >= len(pages) - 1, "every page after the first continues"
    books = Books(env, [NS])
    assert (books.created, books.duplicates, books.disagreements()) == (count + 1, 0, [])
