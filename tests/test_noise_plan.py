"""Noise control in the delivery lifecycle: held deliveries in the status, Ready, Events, requeues, resolves."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from incidentio_operator.api import AlertBlackout, AlertRule, DataAlert, Destination
from incidentio_operator.controller.admissions import AdmissionLedger
from incidentio_operator.decisions.delivery import AlertContext, OpenIncident, Plan, plan, settle
from incidentio_operator.decisions.delivery.model import Delivery, State, prune
from incidentio_operator.decisions.routing import route
from incidentio_operator.decisions.suppression import NoiseFacts

from .factories import DESTINATION, NAMESPACE, alert_body, destination_body, rule_body, with_spec, with_status
from .test_delivery import incidentio

UTC = datetime.UTC
SATURDAY_NOON = datetime.datetime(2026, 12, 5, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
MONDAY_8 = datetime.datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # 08:00 in Berlin
WEEKDAYS = {"timeZone": "Europe/Berlin", "windows": [{"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00"}]}


def noise_context(
    alert: Mapping[str, Any],
    now: datetime.datetime,
    *,
    rules: Sequence[Mapping[str, Any]] = (),
    blackouts: Sequence[Mapping[str, Any]] = (),
    ledger: AdmissionLedger | None = None,
) -> AlertContext:
    parsed = DataAlert.from_body(alert)
    models = [AlertRule.from_body(body) for body in rules or [rule_body()]]
    assert parsed.spec is not None
    routing = route(parsed.spec, parsed.ref, parsed.labels, models)
    destination = Destination.from_body(destination_body())
    facts = NoiseFacts(
        {r.ref.name: r for r in models}, [AlertBlackout.from_body(b) for b in blackouts], ledger or AdmissionLedger()
    )
    return AlertContext(parsed, routing, {destination.ref: destination}, now, noise=facts)


def step(alert: Mapping[str, Any], now: datetime.datetime, **world: Any) -> tuple[Plan, dict[str, Any]]:
    """Plan, write the planned status, answer creates with INC-123, settle; (the plan, the body afterwards)."""
    context = noise_context(alert, now, **world)
    planned = plan(context)
    body = with_status(alert, planned.status)
    if planned.actions:
        outcomes = [incidentio()(action) for action in planned.actions]
        settled = settle(replace(context, alert=DataAlert.from_body(body)), planned, outcomes)
        body = with_status(alert, settled.status)
    return planned, body


def ready(body: Mapping[str, Any]) -> tuple[str, str, str]:
    (condition,) = [c for c in body["status"]["conditions"] if c["type"] == "Ready"]
    return condition["status"], condition["reason"], condition["message"]


def test_outside_the_schedule_the_delivery_is_deferred_ready_and_requeued_for_the_window() -> None:
    planned, body = step(alert_body(), SATURDAY_NOON, rules=[rule_body(schedule=WEEKDAYS)])
    assert planned.actions == ()
    (delivery,) = body["status"]["deliveries"]
    assert delivery["state"] == "Deferred" and delivery["reason"] == "OutsideSchedule"
    assert delivery["reevaluateAt"] == "2026-12-07T07:00:00Z"
    assert delivery["attempts"] == 0
    status, reason, message = ready(body)
    assert (status, reason) == ("True", "Deferred") and "outside its schedule" in message
    assert planned.requeue_after == (MONDAY_8 - SATURDAY_NOON).total_seconds()
    (event,) = planned.events
    assert event.action == "Deferred" and event.verdict is not None
    # Looked at again before the window: the same verdict, no second Event.
    again, _ = step(body, SATURDAY_NOON + datetime.timedelta(hours=1), rules=[rule_body(schedule=WEEKDAYS)])
    assert again.events == ()


def test_a_deferred_alert_due_while_the_operator_was_down_is_delivered_on_the_next_reconcile() -> None:
    _, deferred = step(alert_body(), SATURDAY_NOON, rules=[rule_body(schedule=WEEKDAYS)])
    # Nothing ran at 08:00 Monday; the next look is at 10:30, from what the status recorded.
    late = MONDAY_8 + datetime.timedelta(hours=2, minutes=30)
    planned, body = step(deferred, late, rules=[rule_body(schedule=WEEKDAYS)])
    (action,) = planned.actions
    assert isinstance(action, OpenIncident)
    (delivery,) = body["status"]["deliveries"]
    assert delivery["state"] == "Open" and delivery["reference"] == "INC-123"
    assert "reason" not in delivery and "reevaluateAt" not in delivery
    assert ready(body)[:2] == ("True", "Delivered")


def test_a_deferred_alert_that_resolves_first_is_never_delivered() -> None:
    _, deferred = step(alert_body(), SATURDAY_NOON, rules=[rule_body(schedule=WEEKDAYS)])
    planned, body = step(with_spec(deferred, state="resolved"), MONDAY_8, rules=[rule_body(schedule=WEEKDAYS)])
    assert planned.actions == ()
    (delivery,) = body["status"]["deliveries"]
    assert delivery["state"] == "Suppressed"
    assert delivery["message"].endswith("never delivered: the alert resolved before it was due")
    assert ready(body)[:2] == ("True", "Resolved")


def test_a_suppressed_alert_is_ready_and_its_resolve_calls_nothing() -> None:
    rules = [rule_body(schedule={**WEEKDAYS, "outside": "Drop"})]
    planned, body = step(alert_body(), SATURDAY_NOON, rules=rules)
    assert planned.actions == () and planned.requeue_after is None
    (delivery,) = body["status"]["deliveries"]
    assert delivery["state"] == "Suppressed" and delivery["reason"] == "OutsideSchedule"
    assert ready(body)[:2] == ("True", "Suppressed")
    resolved, after = step(with_spec(body, state="resolved"), MONDAY_8, rules=rules)
    assert resolved.actions == () and not resolved.needs_finalizer
    assert after["status"]["deliveries"][0]["state"] == "Suppressed"


def test_an_active_blackout_defers_until_it_ends_then_delivers() -> None:
    blackout = {
        "apiVersion": "alerting.armor.dev/v1alpha1",
        "kind": "AlertBlackout",
        "metadata": {"name": "migration", "namespace": NAMESPACE},
        "spec": {
            "reason": "Warehouse migration",
            "windows": [{"start": "2026-12-05T10:00:00Z", "end": "2026-12-05T12:00:00Z"}],
        },
    }
    planned, body = step(alert_body(), SATURDAY_NOON, blackouts=[blackout])
    delivery = body["status"]["deliveries"][0]
    assert (delivery["state"], delivery["reason"], delivery["reevaluateAt"]) == (
        "Deferred",
        "Blackout",
        "2026-12-05T12:00:00Z",
    )
    assert planned.requeue_after == 3600.0
    after, delivered = step(body, SATURDAY_NOON + datetime.timedelta(hours=1), blackouts=[blackout])
    assert len(after.actions) == 1 and delivered["status"]["deliveries"][0]["state"] == "Open"


def test_cooldown_names_the_incident_and_existing_rules_are_untouched() -> None:
    ledger = AdmissionLedger()
    rules = [rule_body(cooldown="10m")]
    first_plan, first = step(alert_body("first", uid="uid-1"), SATURDAY_NOON, rules=rules, ledger=ledger)
    ledger.reserve(
        DataAlert.from_body(first), [Delivery.from_json(d) for d in first_plan.status["deliveries"]], SATURDAY_NOON
    )
    ledger.observe(DataAlert.from_body(first), SATURDAY_NOON)
    planned, second = step(alert_body("second", uid="uid-2"), SATURDAY_NOON, rules=rules, ledger=ledger)
    assert planned.actions == ()
    delivery = second["status"]["deliveries"][0]
    assert (delivery["state"], delivery["reason"], delivery["inFavourOf"]) == ("Suppressed", "Cooldown", "INC-123")
    # A rule with no noise control opens incidents exactly as before, cooldowns of other rules regardless.
    plain, body = step(alert_body("third", uid="uid-3"), SATURDAY_NOON, ledger=ledger)
    assert len(plain.actions) == 1
    assert set(body["status"]["deliveries"][0]) >= {"state", "incidentId"}
    assert not {"admittedBy", "reason", "message", "reevaluateAt"} & set(body["status"]["deliveries"][0])


def test_history_keeps_the_incident_a_cooldown_counts_from() -> None:
    def delivery(epoch: int, state: State, incident: str = "") -> Delivery:
        return Delivery(DESTINATION, epoch, f"key-{epoch}", state, incident_id=incident)

    deliveries = [delivery(1, State.CLOSED, "id-1")] + [delivery(n, State.SUPPRESSED) for n in range(2, 7)]
    kept = prune(deliveries, 6)
    assert [d.epoch for d in kept] == [1, 4, 5, 6]
    plain = [delivery(n, State.CLOSED, f"id-{n}") for n in range(1, 7)]
    assert [d.epoch for d in prune(plain, 6)] == [4, 5, 6]
