"""Planning one alert: which incidents to open or close, and the status to write before any call goes out.

The steps follow the lifecycle of DESIGN.md §4: work out the trigger epoch; for an active alert,
make sure every routed destination has one delivery of this epoch, let noise control (DESIGN.md §9)
defer or suppress the ones not sent yet, and open the rest; release deferred deliveries that can no
longer be due; forget deliveries that never went out; close every incident of an alert that resolved, was
dismissed or is being deleted, and those of earlier epochs still open after a re-trigger.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from incidentio_operator.api import ACTIVE_STATES, CLOSING_STATES, DataAlert, Destination, format_time, parse_time
from incidentio_operator.decisions.delivery import alertevents
from incidentio_operator.decisions.delivery.ended import ended_event_message, record_ended
from incidentio_operator.decisions.delivery.hold import noise_control, release_held
from incidentio_operator.decisions.delivery.model import (
    Action,
    AlertContext,
    CloseIncident,
    Delivery,
    DeliveryEvent,
    OpenIncident,
    Plan,
    State,
    closing,
    destination_label,
    destination_ref,
    earliest,
    prune,
    unchanged_since_failure,
)
from incidentio_operator.decisions.delivery.readiness import alert_status
from incidentio_operator.decisions.delivery.record import UpdateIncident
from incidentio_operator.decisions.delivery.updates import follow_alert, opening, wanted_incident
from incidentio_operator.decisions.payloads import idempotency_key
from incidentio_operator.decisions.routing import Route
from incidentio_operator.incidentio.models import CreateIncidentRequest, EditIncidentRequest


@dataclass
class _Draft:
    """The plan as it is being built: the deliveries, and what the steps decided so far."""

    deliveries: list[Delivery]
    epoch: int
    actions: list[Action] = field(default_factory=list)
    events: list[DeliveryEvent] = field(default_factory=list)
    requeue: float | None = None

    def wait(self, seconds: float | None) -> None:
        self.requeue = earliest(self.requeue, seconds)


def plan(context: AlertContext) -> Plan:
    """What to do for one alert now; no I/O."""
    alert = context.alert
    epoch, observed_state = current_epoch(alert)
    draft = _Draft(recorded_deliveries(alert), epoch)
    if alert.spec is None and not alert.deleting:
        holds = any(d.holds_incident for d in draft.deliveries)
        status = alert_status(context, epoch, observed_state, draft.deliveries)
        return Plan(status, (), holds, None, epoch, tuple(draft.deliveries))
    routed = not closing(alert) and context.routing is not None and not context.outside_shard
    if routed and context.routing is not None:
        for route in context.routing.routes:
            _open_routed(context, route, draft)
    draft.deliveries = release_held(context, draft.deliveries, epoch)
    _record_ended(context, draft)
    if routed:
        # After _record_ended: an incident a responder ended is never edited.
        _follow_alert(context, draft)
    _forget_unsent(alert, draft)
    for index in range(len(draft.deliveries)):
        _close_finished(context, index, draft)
    deliveries = prune(draft.deliveries, epoch)
    needs_finalizer = any(d.holds_incident for d in deliveries) or bool(draft.actions)
    acting = any(not isinstance(action, UpdateIncident) for action in draft.actions)
    status = alert_status(context, epoch, observed_state, deliveries, acting=acting)
    return Plan(
        status, tuple(draft.actions), needs_finalizer, draft.requeue, epoch, tuple(deliveries), tuple(draft.events)
    )


def recorded_deliveries(alert: DataAlert) -> list[Delivery]:
    """The deliveries in the alert's status, as last written."""
    return [Delivery.from_json(item) for item in alert.status.get("deliveries") or () if isinstance(item, Mapping)]


def current_epoch(alert: DataAlert) -> tuple[int, str]:
    """(trigger epoch, observed state): a trigger after a resolve, or the first one, starts a new epoch."""
    epoch = int(alert.status.get("epoch") or 0)
    observed = str(alert.status.get("observedState") or "")
    spec = alert.spec
    if spec is None or alert.deleting:
        return epoch, observed
    if spec.state in ACTIVE_STATES and (epoch == 0 or observed in CLOSING_STATES):
        epoch += 1
    return epoch, spec.state


def due_in(delivery: Delivery, now: datetime.datetime) -> float | None:
    """Seconds until the delivery may be retried, or None when it may go now."""
    moment = parse_time(delivery.next_attempt_at)
    if moment is None or moment <= now:
        return None
    return (moment - now).total_seconds()


def blocked_by(destination: Destination | None, label: str) -> str:
    """Why no call can go to the destination now ('' when one can)."""
    if destination is None:
        return f"IncidentIoDestination {label} not found"
    if destination.spec is None:
        return f"IncidentIoDestination {label} is invalid: {destination.spec_error}"
    if destination.spec.suspend:
        return f"IncidentIoDestination {label} is suspended"
    if not destination.ready:
        return f"IncidentIoDestination {label} is not Ready ({destination.not_ready_reason})"
    return ""


def blocked_for_close(context: AlertContext, destination: Destination | None, label: str) -> str:
    """Why no close can go to the destination now ('' when one can).

    Besides a Ready destination, one whose Secret is gone (NoAPIKey) or that is being deleted still takes
    closes, with the key the controller last read for it: what was opened with a key is closed with it.
    """
    blocked = blocked_by(destination, label)
    if not blocked or destination is None or destination.spec is None or destination.spec.suspend:
        return blocked
    secret_gone = destination.deleting or destination.ready_reason in ("NoAPIKey", "NoAlertSourceToken", "Deleting")
    return "" if secret_gone and destination.ref in context.keys_held else blocked


def _open_routed(context: AlertContext, route: Route, draft: _Draft) -> None:
    """One delivery of this epoch per routed destination; a create for each that may go now."""
    alert, namespace = context.alert, context.alert.ref.namespace
    label = destination_label(route.destination, namespace)
    index = next((i for i, d in enumerate(draft.deliveries) if d.destination == label and d.epoch == draft.epoch), None)
    if index is None:
        key = idempotency_key(alert.uid, route.destination, draft.epoch)
        draft.deliveries.append(Delivery(label, draft.epoch, key, State.PENDING, rules=route.rules))
        index = len(draft.deliveries) - 1
    destination = context.destinations.get(route.destination)
    delivery = draft.deliveries[index] = alertevents.in_destination_mode(context, draft.deliveries[index], destination)
    if delivery.state not in (State.PENDING, State.FAILED, State.DEFERRED):
        return
    hold = noise_control(context, route, replace(delivery, rules=route.rules))
    delivery = draft.deliveries[index] = hold.delivery
    if hold.held:
        draft.events.extend([hold.event] if hold.event else [])
        draft.wait(hold.requeue_after)
        return
    if unchanged_since_failure(delivery, alert, destination):
        return
    blocked = blocked_by(destination, label)
    if blocked:
        draft.deliveries[index] = replace(delivery, state=State.PENDING, waiting_for=blocked)
        return
    wait = due_in(delivery, context.now)
    if wait is not None and delivery.state is State.PENDING:
        draft.wait(wait)
        return
    assert destination is not None
    attempt = _attempt(delivery, alert, destination, state=State.PENDING)
    if delivery.alert_event:
        draft.deliveries[index] = attempt
        draft.actions.append(alertevents.send(context, delivery, destination, "firing"))
        return
    draft.deliveries[index], request = opening(context, destination, attempt)
    draft.actions.append(OpenIncident(route.destination, label, draft.epoch, request))


def _follow_alert(context: AlertContext, draft: _Draft) -> None:
    """Open incidents of this epoch follow their alert: a coalesced edit of what changed (updates.py)."""
    for index, delivery in enumerate(draft.deliveries):
        step = follow_alert(context, delivery, draft.epoch)
        draft.deliveries[index] = step.delivery
        draft.actions.extend([step.action] if step.action else [])
        draft.wait(step.requeue_after)


def _record_ended(context: AlertContext, draft: _Draft) -> None:
    """Incidents a read found over in incident.io are closed deliveries now: nothing more is sent for them."""
    for index, delivery in enumerate(draft.deliveries):
        how = context.ended.get((delivery.destination, delivery.epoch))
        if how and delivery.incident_id and delivery.state in (State.OPEN, State.CLOSING):
            ended = record_ended(delivery, how, format_time(context.now))
            draft.deliveries[index] = ended
            ref = destination_ref(delivery.destination, context.alert.ref.namespace)
            draft.events.append(DeliveryEvent("Ended", ref, delivery.reference, ended_event_message(delivery, how)))


def _forget_unsent(alert: DataAlert, draft: _Draft) -> None:
    """Deliveries to be closed that never reached incident.io have nothing to close: drop them."""
    kept: list[Delivery] = []
    for delivery in draft.deliveries:
        if closing(alert) or delivery.epoch < draft.epoch:
            if delivery.state is State.PENDING and delivery.attempts == 0:
                continue  # never sent: nothing can exist in incident.io
            if delivery.state is State.FAILED and not delivery.delivered:
                continue  # the create was refused: nothing to close
        kept.append(delivery)
    draft.deliveries = kept


def _close_finished(context: AlertContext, index: int, draft: _Draft) -> None:
    """Close the delivery's incident when its alert is over, or when it belongs to an earlier epoch."""
    alert, delivery = context.alert, draft.deliveries[index]
    if not (closing(alert) or delivery.epoch < draft.epoch):
        return
    if not delivery.holds_incident and delivery.state is not State.FAILED:
        return
    ref = destination_ref(delivery.destination, alert.ref.namespace)
    destination = context.destinations.get(ref)
    if unchanged_since_failure(delivery, alert, destination):
        return
    if destination is not None and destination.spec is not None and not destination.spec.closed_status_id:
        if delivery.incident_id:
            draft.deliveries[index] = replace(delivery, state=State.LEFT_OPEN, waiting_for="", last_error="")
            message = f"Incident {delivery.reference} left open: the destination has no closedStatusId"
            draft.events.append(DeliveryEvent("LeftOpen", ref, delivery.reference, message))
            return
    blocked = blocked_for_close(context, destination, delivery.destination)
    if blocked:
        if alert.deleting and destination is None:
            # Nothing can close it any more; do not hold the object's deletion hostage.
            draft.deliveries[index] = replace(delivery, state=State.LEFT_OPEN, waiting_for="", last_error=blocked)
            draft.events.append(DeliveryEvent("LeftOpen", ref, delivery.reference, f"Incident left open: {blocked}"))
        else:
            draft.deliveries[index] = replace(delivery, waiting_for=blocked)
        return
    wait = due_in(delivery, context.now)
    if wait is not None:
        draft.wait(wait)
        return
    assert destination is not None and destination.spec is not None
    if delivery.alert_event:
        _resolve_alert(context, index, draft, destination)
        return
    # A close counts its own attempts; an unconfirmed create goes on counting the create's.
    attempts = 1 if delivery.state is State.OPEN else delivery.attempts + 1
    state = State.CLOSING if delivery.incident_id else State.PENDING
    draft.deliveries[index] = _attempt(delivery, alert, destination, state=state, attempts=attempts)
    if delivery.incident_id:
        request = close_request(destination)
        draft.actions.append(CloseIncident(ref, delivery.destination, delivery.epoch, delivery.incident_id, request))
    elif alert.spec is not None:
        # A create whose outcome is unknown: re-send the same key and close what comes back.
        create = _create_request(context, destination, delivery)
        draft.actions.append(OpenIncident(ref, delivery.destination, delivery.epoch, create, then_close=True))


def _resolve_alert(context: AlertContext, index: int, draft: _Draft, destination: Destination) -> None:
    """The resolved event finds the alert by its deduplication key, whether or not the firing one was confirmed."""
    delivery = draft.deliveries[index]
    attempts = 1 if delivery.state is State.FIRING else delivery.attempts + 1
    state = State.FIRING if delivery.delivered else State.PENDING
    draft.deliveries[index] = _attempt(delivery, context.alert, destination, state=state, attempts=attempts)
    draft.actions.append(alertevents.send(context, delivery, destination, "resolved"))


def _attempt(
    delivery: Delivery, alert: DataAlert, destination: Destination, *, state: State, attempts: int | None = None
) -> Delivery:
    """The delivery as recorded before a call goes out: the attempt counted, the generations it was made for."""
    return replace(
        delivery,
        state=state,
        attempts=delivery.attempts + 1 if attempts is None else attempts,
        waiting_for="",
        next_attempt_at="",
        alert_generation=alert.generation,
        destination_generation=destination.generation,
    )


def _create_request(context: AlertContext, destination: Destination, delivery: Delivery) -> CreateIncidentRequest:
    return wanted_incident(context, destination, delivery)[0]


def close_request(destination: Destination) -> EditIncidentRequest:
    """The edit that closes an incident with the destination's closed status."""
    assert destination.spec is not None
    return EditIncidentRequest(
        incident_status_id=destination.spec.closed_status_id,
        notify_incident_channel=destination.spec.incident.notify_incident_channel,
    )
