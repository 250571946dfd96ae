"""Delivery mode AlertEvent in the lifecycle (DESIGN.md §10): the same plan → record → call → settle as an
incident's, with a firing event where an incident would be opened and a resolved one where it would be closed.

A delivery keeps the mode it was created with once anything went out, so a destination that changes mode
still closes (or resolves) what it opened the old way; one that never went out follows the destination.
"""

from __future__ import annotations

from dataclasses import replace

from incidentio_operator.api import Destination, format_time
from incidentio_operator.api.alertsource import ALERT_EVENT_MODE
from incidentio_operator.decisions.alertevents import alert_event, deduplication_key
from incidentio_operator.decisions.delivery.model import (
    AlertContext,
    Delivery,
    DeliveryEvent,
    Outcome,
    SendAlertEvent,
    State,
    destination_ref,
)
from incidentio_operator.decisions.payloads import idempotency_key
from incidentio_operator.incidentio.alertsources import AlertEventStatus


def in_destination_mode(context: AlertContext, delivery: Delivery, destination: Destination | None) -> Delivery:
    """The delivery in its destination's current mode, with that mode's key, unless something went out already."""
    if destination is None or destination.spec is None or delivery.attempts > 0 or delivery.delivered:
        return delivery
    ref, epoch, uid = destination.ref, delivery.epoch, context.alert.uid
    if destination.spec.alert_events and not delivery.alert_event:
        return replace(
            delivery, mode=ALERT_EVENT_MODE, idempotency_key="", deduplication_key=deduplication_key(uid, ref, epoch)
        )
    if not destination.spec.alert_events and delivery.alert_event:
        return replace(delivery, mode="", deduplication_key="", idempotency_key=idempotency_key(uid, ref, epoch))
    return delivery


def send(
    context: AlertContext, delivery: Delivery, destination: Destination, status: AlertEventStatus
) -> SendAlertEvent:
    """The firing (or resolved) event of the delivery, under its deduplication key."""
    alert = context.alert
    assert destination.spec is not None
    event = alert_event(
        status,
        alert.spec,
        alert.ref,
        alert.labels,
        destination.spec.incident.name_prefix,
        delivery.rules,
        delivery.deduplication_key,
    )
    return SendAlertEvent(destination.ref, delivery.destination, delivery.epoch, event)


def accepted(context: AlertContext, delivery: Delivery, outcome: Outcome, events: list[DeliveryEvent]) -> Delivery:
    """The delivery after incident.io accepted its event (202): Firing, or Resolved."""
    stamp, key = format_time(context.now), delivery.deduplication_key
    ref = destination_ref(delivery.destination, context.alert.ref.namespace)
    if outcome.event_status == "resolved":
        events.append(DeliveryEvent("Resolved", ref, key, f"Alert {key} resolved in incident.io"))
        delivery = replace(delivery, state=State.RESOLVED, closed_at=stamp)
    else:
        if not delivery.opened_at:
            events.append(DeliveryEvent("Firing", ref, key, f"Alert {key} firing in incident.io"))
        delivery = replace(delivery, state=State.FIRING, opened_at=delivery.opened_at or stamp)
    return replace(delivery, last_error="", waiting_for="", next_attempt_at="")
