"""Retention of settled DataAlerts: when an alert is settled, when it is to be deleted, and what takes that back."""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

from incidentio_operator.api import DataAlert
from incidentio_operator.decisions.delivery import plan, settle
from incidentio_operator.decisions.delivery.retention import at_rest, seconds_until_deletion

from .factories import NOW, alert_body, with_spec, with_status
from .test_delivery import Body, context, incidentio, opened, resolved

HOUR = 3600.0


def reconciled(body: Body, *, ttl: float | None = HOUR, seconds: float = 0) -> Body:
    """Plan and settle once with the operator's --settled-alert-ttl at ``ttl``; the body with that status."""
    now = NOW + datetime.timedelta(seconds=seconds)
    planned_context = replace(context(body, now=now), settled_ttl=ttl)
    planned = plan(planned_context)
    before = with_status(body, planned.status)
    if not planned.actions:
        return before
    respond = incidentio()
    outcomes = [respond(action) for action in planned.actions]
    settled = settle(replace(planned_context, alert=DataAlert.from_body(before)), planned, outcomes)
    return with_status(body, settled.status)


def status(body: Body) -> dict[str, Any]:
    return dict(body["status"])


def test_a_closed_alert_is_deleted_the_ttl_after_it_settled_and_keeps_that_moment() -> None:
    closed = reconciled(resolved())
    assert status(closed)["deliveries"][0]["state"] == "Closed"
    assert status(closed)["settledAt"] == "2026-11-26T10:00:00Z"
    assert status(closed)["deleteAfter"] == "2026-11-26T11:00:00Z"
    later = reconciled(closed, seconds=600)
    assert status(later)["settledAt"] == "2026-11-26T10:00:00Z", "settling again later does not move it"
    alert = DataAlert.from_body(later)
    assert seconds_until_deletion(alert, NOW) == HOUR
    assert seconds_until_deletion(alert, NOW + datetime.timedelta(seconds=HOUR + 1)) == -1


def test_the_alerts_own_ttl_wins_over_the_operators() -> None:
    closed = reconciled(resolved(ttlSecondsAfterSettled=60), ttl=None)
    assert status(closed)["deleteAfter"] == "2026-11-26T10:01:00Z"


def test_without_any_ttl_nothing_is_deleted() -> None:
    closed = reconciled(resolved(), ttl=None)
    assert "settledAt" not in status(closed) and "deleteAfter" not in status(closed)
    assert seconds_until_deletion(DataAlert.from_body(closed), NOW + datetime.timedelta(days=365)) is None


def test_an_alert_holding_an_open_incident_is_never_settled() -> None:
    held = reconciled(opened())
    assert status(held)["deliveries"][0]["state"] == "Open"
    assert "deleteAfter" not in status(held)
    assert seconds_until_deletion(DataAlert.from_body(held), NOW + datetime.timedelta(days=365)) is None


def test_an_alert_that_triggers_again_is_no_longer_settled_and_its_deletion_is_taken_back() -> None:
    closed = reconciled(resolved())
    retriggered = with_spec(closed, state="triggered")
    planned = plan(replace(context(retriggered, now=NOW + datetime.timedelta(seconds=60)), settled_ttl=HOUR))
    # Written before the create goes (the merge patch's nulls remove them), so no deletion races the create.
    assert planned.status["settledAt"] is None and planned.status["deleteAfter"] is None
    assert planned.actions, "a new incident is opened"
    again = reconciled(retriggered, seconds=60)
    assert "settledAt" not in status(again) and "deleteAfter" not in status(again)


def test_an_alert_no_rule_routes_is_not_settled_since_a_rule_added_later_may_route_it() -> None:
    unrouted = alert_body(eventType="freshness", changes=[])
    planned = plan(replace(context(unrouted, rules=[]), settled_ttl=HOUR))
    assert "deleteAfter" not in planned.status


def test_an_alert_being_deleted_is_left_to_its_deletion() -> None:
    closed = reconciled(resolved())
    deleting = {**closed, "metadata": {**closed["metadata"], "deletionTimestamp": "2026-11-26T11:00:00Z"}}
    assert seconds_until_deletion(DataAlert.from_body(deleting), NOW + datetime.timedelta(days=1)) is None


def test_a_closed_alert_is_at_rest_while_its_retention_stamps_are_what_the_ttl_gives() -> None:
    kept = DataAlert.from_body(reconciled(resolved(), ttl=None))
    assert at_rest(kept, None)
    assert not at_rest(kept, HOUR), "an operator TTL set since then: a look stamps its deletion"
    stamped = DataAlert.from_body(reconciled(resolved()))
    assert at_rest(stamped, HOUR)
    assert not at_rest(stamped, 2 * HOUR), "a TTL changed since then moves deleteAfter"
    assert not at_rest(stamped, None), "a TTL removed since then takes the stamps back"


def test_an_alert_holding_an_incident_or_active_or_not_yet_looked_at_is_never_at_rest() -> None:
    assert not at_rest(DataAlert.from_body(reconciled(opened())), None), "its incident is open"
    assert not at_rest(DataAlert.from_body(resolved()), None), "resolved, its incident not closed yet"
    closed = reconciled(resolved(), ttl=None)
    assert not at_rest(DataAlert.from_body(with_spec(closed, state="triggered")), None), "triggered again"
    finalized = {**closed, "metadata": {**closed["metadata"], "finalizers": ["alerting.armor.dev/close-incidents"]}}
    assert not at_rest(DataAlert.from_body(finalized), None)
