"""Settling one alert: the outcomes of the planned calls folded into the status written afterwards."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import replace

from incidentio_operator.api import format_time
from incidentio_operator.decisions.delivery import alertevents
from incidentio_operator.decisions.delivery.ended import ended_event_message, record_ended
from incidentio_operator.decisions.delivery.model import (
    AlertContext,
    Delivery,
    DeliveryEvent,
    Outcome,
    Plan,
    Settlement,
    State,
    closing,
    destination_ref,
    earliest,
    retry_delay,
)
from incidentio_operator.decisions.delivery.readiness import alert_status
from incidentio_operator.decisions.delivery.updates import settle_update
from incidentio_operator.incidentio.errors import Forbidden, IncidentIoError, RateLimited, Unauthorized


def _failure_message(error: IncidentIoError, action: str) -> str:
    text = str(error)
    if isinstance(error, Unauthorized | Forbidden):
        # Their str() is the fixed headline; the detail and the request id help incident.io support.
        detail = "; ".join(error.messages)
        text += f": {detail}" if detail else ""
        text += f" (request_id {error.request_id})" if error.request_id else ""
    hint = ""
    if action == "alert event":
        return f"{text}{_alert_event_hint(error)}"
    if isinstance(error, Unauthorized):
        hint = " The API key was rejected: put a valid key in the destination's Secret."
    elif isinstance(error, Forbidden):
        hint = " The API key lacks a permission: create a key with the roles this operator needs."
    elif error.status in (400, 422):
        if action == "close":
            hint = (
                " incident.io refused the close: close the incident in incident.io, or use an API key"
                " allowed to skip the post-incident flow, then edit the alert or the destination to retry."
            )
        else:
            hint = " Fix the destination's incident settings (e.g. its severity map), which retries the delivery."
    elif error.status == 404:
        hint = " The incident no longer exists in incident.io."
    return f"{text}{hint}"


def _alert_event_hint(error: IncidentIoError) -> str:
    if isinstance(error, Unauthorized | Forbidden):
        return " The alert source refused the token: put its token in the Secret of spec.alertSource.tokenSecretRef."
    if error.status == 404:
        return " No HTTP alert source has this ID: check spec.alertSource.configId."
    if error.status in (400, 422):
        return " incident.io refused the alert event; editing the alert or the destination retries it."
    return ""


def settle(context: AlertContext, executed: Plan, outcomes: Sequence[Outcome]) -> Settlement:
    """Fold the outcomes of the plan's calls into the status to write afterwards."""
    deliveries = list(executed.deliveries)
    index_of = {(d.destination, d.epoch): i for i, d in enumerate(deliveries)}
    events: list[DeliveryEvent] = []
    requeue = executed.requeue_after
    for outcome in outcomes:
        index = index_of.get((outcome.label, outcome.epoch))
        if index is None:
            continue
        if outcome.update is not None:
            deliveries[index], delay, event = settle_update(context, deliveries[index], outcome)
            requeue = earliest(requeue, delay)
            events.extend([event] if event else [])
            continue
        was_pending = executed.deliveries[index].state is State.PENDING
        if outcome.error is None:
            deliveries[index] = _succeeded(context, deliveries[index], outcome, was_pending, events)
            if deliveries[index].state is State.CLOSING or (
                deliveries[index].state is State.FIRING and closing(context.alert)
            ):
                requeue = earliest(requeue, 0.0)
        else:
            deliveries[index], delay = _failed(context, deliveries[index], outcome.error, events)
            requeue = earliest(requeue, delay)
    status = alert_status(context, executed.epoch, str(executed.status.get("observedState") or ""), deliveries)
    return Settlement(
        status=status,
        holds_incidents=any(d.holds_incident for d in deliveries),
        requeue_after=requeue,
        events=tuple(events),
    )


def _succeeded(
    context: AlertContext, delivery: Delivery, outcome: Outcome, was_pending: bool, events: list[DeliveryEvent]
) -> Delivery:
    """The delivery after a call that worked: the incident it opened, or its close (or the alert event accepted)."""
    if outcome.event_status:
        return alertevents.accepted(context, delivery, outcome, events)
    alert, stamp = context.alert, format_time(context.now)
    ref = destination_ref(delivery.destination, alert.ref.namespace)
    incident = outcome.incident
    if incident is not None and not delivery.incident_id:
        delivery = replace(
            delivery,
            incident_id=incident.id,
            reference=incident.reference,
            permalink=incident.permalink or "",
            opened_at=stamp,
        )
        events.append(DeliveryEvent("Created", ref, incident.reference, f"Incident {incident.reference} opened"))
    if outcome.ended:
        events.append(DeliveryEvent("Ended", ref, delivery.reference, ended_event_message(delivery, outcome.ended)))
        return record_ended(delivery, outcome.ended, stamp)
    if outcome.closed:
        delivery = replace(delivery, state=State.CLOSED, closed_at=stamp)
        events.append(DeliveryEvent("Closed", ref, delivery.reference, f"Incident {delivery.reference} closed"))
    elif incident is not None:
        state = State.OPEN
        if was_pending and closing(alert):
            # A re-sent create for a resolved alert: close it, unless the destination cannot.
            destination = context.destinations.get(ref)
            cannot_close = destination and destination.spec and not destination.spec.closed_status_id
            state = State.LEFT_OPEN if cannot_close else State.CLOSING
            if cannot_close:
                message = f"Incident {incident.reference} left open: the destination has no closedStatusId"
                events.append(DeliveryEvent("LeftOpen", ref, incident.reference, message))
        delivery = replace(delivery, state=state)
    return replace(delivery, last_error="", waiting_for="", next_attempt_at="")


def _failed(
    context: AlertContext, delivery: Delivery, error: IncidentIoError, events: list[DeliveryEvent]
) -> tuple[Delivery, float | None]:
    """The delivery after a refused call, and when to try again (None: not until something changes)."""
    alert = context.alert
    message = _failure_message(
        error, "alert event" if delivery.alert_event else "close" if delivery.incident_id else "create"
    )
    if error.retryable or isinstance(error, Unauthorized | Forbidden):
        delay = retry_delay(delivery.attempts, context.retry_base)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        retried = replace(
            delivery,
            state=State.CLOSING if delivery.incident_id and closing(alert) else delivery.state,
            last_error=message,
            next_attempt_at=format_time(context.now + datetime.timedelta(seconds=delay)),
        )
        return retried, delay
    ref = destination_ref(delivery.destination, alert.ref.namespace)
    events.append(DeliveryEvent("Failed", ref, delivery.reference, message))
    return replace(delivery, state=State.FAILED, last_error=message, next_attempt_at=""), None
