"""Pure delivery lifecycle: from an alert, its routes, the destinations and the current status, what to do.

The operator runs one alert in three steps: ``plan`` says which incidents to open or close and
which status to write *before* any call goes out (so the idempotency key and the attempt are on
record if the process dies mid-call); the calls run; ``settle`` folds their outcomes into the
status written afterwards. Neither step does I/O.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from incidentio_operator.api import (
    ACTIVE_STATES,
    CLOSING_STATES,
    DataAlert,
    Destination,
    ObjectRef,
    format_time,
    parse_time,
    ready_conditions,
)
from incidentio_operator.decisions.payloads import create_request, idempotency_key
from incidentio_operator.decisions.routing import Routing
from incidentio_operator.incidentio import (
    CreateIncidentRequest,
    EditIncidentRequest,
    Forbidden,
    Incident,
    IncidentIoError,
    RateLimited,
    Unauthorized,
)

# Closed deliveries of older epochs kept in the status as history; older ones are dropped.
HISTORY_EPOCHS = 3
RETRY_BASE_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0


class State(StrEnum):
    PENDING = "Pending"
    OPEN = "Open"
    CLOSING = "Closing"
    CLOSED = "Closed"
    LEFT_OPEN = "LeftOpen"
    FAILED = "Failed"


@dataclass(frozen=True)
class Delivery:
    """One incident (to be) opened in one destination for one trigger epoch of an alert."""

    destination: str
    epoch: int
    idempotency_key: str
    state: State
    rules: tuple[str, ...] = ()
    incident_id: str = ""
    reference: str = ""
    permalink: str = ""
    attempts: int = 0
    last_error: str = ""
    waiting_for: str = ""
    alert_generation: int = 0
    destination_generation: int = 0
    opened_at: str = ""
    closed_at: str = ""
    next_attempt_at: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "destination": self.destination,
            "rules": list(self.rules),
            "epoch": self.epoch,
            "idempotencyKey": self.idempotency_key,
            "state": str(self.state),
            "attempts": self.attempts,
        }
        optional = {
            "incidentId": self.incident_id,
            "reference": self.reference,
            "permalink": self.permalink,
            "lastError": self.last_error,
            "waitingFor": self.waiting_for,
            "alertGeneration": self.alert_generation,
            "destinationGeneration": self.destination_generation,
            "openedAt": self.opened_at,
            "closedAt": self.closed_at,
            "nextAttemptAt": self.next_attempt_at,
        }
        data.update({key: value for key, value in optional.items() if value})
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Delivery:
        try:
            state = State(str(data.get("state")))
        except ValueError:
            state = State.PENDING
        return cls(
            destination=str(data.get("destination") or ""),
            epoch=int(data.get("epoch") or 0),
            idempotency_key=str(data.get("idempotencyKey") or ""),
            state=state,
            rules=tuple(str(rule) for rule in data.get("rules") or ()),
            incident_id=str(data.get("incidentId") or ""),
            reference=str(data.get("reference") or ""),
            permalink=str(data.get("permalink") or ""),
            attempts=int(data.get("attempts") or 0),
            last_error=str(data.get("lastError") or ""),
            waiting_for=str(data.get("waitingFor") or ""),
            alert_generation=int(data.get("alertGeneration") or 0),
            destination_generation=int(data.get("destinationGeneration") or 0),
            opened_at=str(data.get("openedAt") or ""),
            closed_at=str(data.get("closedAt") or ""),
            next_attempt_at=str(data.get("nextAttemptAt") or ""),
        )

    @property
    def holds_incident(self) -> bool:
        """An incident exists, or may exist because a create call went out."""
        return self.state in (State.OPEN, State.CLOSING) or (self.state is State.PENDING and self.attempts > 0)


def destination_label(destination: ObjectRef, alert_namespace: str) -> str:
    return destination.name if destination.namespace == alert_namespace else str(destination)


def destination_ref(label: str, alert_namespace: str) -> ObjectRef:
    namespace, _, name = label.rpartition("/")
    return ObjectRef(namespace or alert_namespace, name)


def retry_delay(attempts: int, base: float = RETRY_BASE_SECONDS) -> float:
    return float(min(base * 2.0 ** max(attempts - 1, 0), RETRY_MAX_SECONDS))


@dataclass(frozen=True)
class OpenIncident:
    destination: ObjectRef
    label: str
    epoch: int
    request: CreateIncidentRequest
    # A create whose outcome is unknown, for an alert that has since resolved: re-send the same
    # key (incident.io answers with the incident if it exists) and close what comes back.
    then_close: bool = False


@dataclass(frozen=True)
class CloseIncident:
    destination: ObjectRef
    label: str
    epoch: int
    incident_id: str
    request: EditIncidentRequest


Action = OpenIncident | CloseIncident


@dataclass(frozen=True)
class Outcome:
    """What came back from one action: the incident, or the error."""

    label: str
    epoch: int
    incident: Incident | None = None
    closed: bool = False
    error: IncidentIoError | None = None


@dataclass(frozen=True)
class DeliveryEvent:
    """Something a human wants to see in ``kubectl describe`` and in the destination's counters."""

    action: str  # Created | Closed | Failed | LeftOpen
    destination: ObjectRef
    reference: str
    message: str


@dataclass(frozen=True)
class AlertContext:
    alert: DataAlert
    routing: Routing | None
    destinations: Mapping[ObjectRef, Destination]
    now: datetime.datetime
    retry_base: float = RETRY_BASE_SECONDS


@dataclass(frozen=True)
class Plan:
    status: dict[str, Any]
    actions: tuple[Action, ...]
    needs_finalizer: bool
    requeue_after: float | None
    epoch: int
    deliveries: tuple[Delivery, ...] = field(default=())
    events: tuple[DeliveryEvent, ...] = field(default=())


@dataclass(frozen=True)
class Settlement:
    status: dict[str, Any]
    holds_incidents: bool
    requeue_after: float | None
    events: tuple[DeliveryEvent, ...]


def _current_epoch(alert: DataAlert) -> tuple[int, str]:
    epoch = int(alert.status.get("epoch") or 0)
    observed = str(alert.status.get("observedState") or "")
    spec = alert.spec
    if spec is None or alert.deleting:
        return epoch, observed
    if spec.state in ACTIVE_STATES and (epoch == 0 or observed in CLOSING_STATES):
        epoch += 1
    return epoch, spec.state


def _due(delivery: Delivery, now: datetime.datetime) -> float | None:
    """Seconds until the delivery may be retried, or None when it may go now."""
    moment = parse_time(delivery.next_attempt_at)
    if moment is None or moment <= now:
        return None
    return (moment - now).total_seconds()


def _blocked(destination: Destination | None, label: str) -> str:
    if destination is None:
        return f"IncidentIoDestination {label} not found"
    if destination.spec is None:
        return f"IncidentIoDestination {label} is invalid: {destination.spec_error}"
    if destination.spec.suspend:
        return f"IncidentIoDestination {label} is suspended"
    if not destination.ready:
        return f"IncidentIoDestination {label} is not Ready ({destination.not_ready_reason})"
    return ""


def _earliest(current: float | None, candidate: float | None) -> float | None:
    if candidate is None:
        return current
    return candidate if current is None else min(current, candidate)


def plan(context: AlertContext) -> Plan:
    alert, now = context.alert, context.now
    deliveries = [
        Delivery.from_json(item) for item in alert.status.get("deliveries") or () if isinstance(item, Mapping)
    ]
    epoch, observed_state = _current_epoch(alert)
    actions: list[Action] = []
    events: list[DeliveryEvent] = []
    requeue: float | None = None
    closing = alert.deleting or (alert.spec is not None and alert.spec.state in CLOSING_STATES)
    namespace = alert.ref.namespace

    if alert.spec is None and not alert.deleting:
        holds = any(d.holds_incident for d in deliveries)
        return Plan(_status(context, epoch, observed_state, deliveries), (), holds, None, epoch, tuple(deliveries))

    if not closing and alert.spec is not None and context.routing is not None:
        existing = {(d.destination, d.epoch): index for index, d in enumerate(deliveries)}
        for route in context.routing.routes:
            label = destination_label(route.destination, namespace)
            index = existing.get((label, epoch))
            if index is None:
                deliveries.append(
                    Delivery(
                        destination=label,
                        epoch=epoch,
                        idempotency_key=idempotency_key(alert.uid, route.destination, epoch),
                        state=State.PENDING,
                        rules=route.rules,
                    )
                )
                index = len(deliveries) - 1
            delivery = (
                replace(deliveries[index], rules=route.rules)
                if deliveries[index].state
                in (
                    State.PENDING,
                    State.FAILED,
                )
                else deliveries[index]
            )
            destination = context.destinations.get(route.destination)
            if (
                delivery.state is State.FAILED
                and destination is not None
                and (
                    delivery.alert_generation == alert.generation
                    and delivery.destination_generation == destination.generation
                )
            ):
                deliveries[index] = delivery
                continue
            if delivery.state not in (State.PENDING, State.FAILED):
                deliveries[index] = delivery
                continue
            blocked = _blocked(destination, label)
            if blocked:
                deliveries[index] = replace(delivery, state=State.PENDING, waiting_for=blocked)
                continue
            wait = _due(delivery, now)
            if wait is not None and delivery.state is State.PENDING:
                deliveries[index] = delivery
                requeue = _earliest(requeue, wait)
                continue
            assert destination is not None and destination.spec is not None
            deliveries[index] = replace(
                delivery,
                state=State.PENDING,
                attempts=delivery.attempts + 1,
                waiting_for="",
                next_attempt_at="",
                alert_generation=alert.generation,
                destination_generation=destination.generation,
            )
            actions.append(
                OpenIncident(
                    destination=route.destination,
                    label=label,
                    epoch=epoch,
                    request=create_request(
                        alert.spec,
                        alert.ref,
                        destination.spec,
                        destination.severity_ids,
                        route.rules,
                        delivery.idempotency_key,
                    ),
                )
            )

    # Incidents to close: every one when the alert resolves, is dismissed or is deleted; while it is
    # active, those of earlier epochs whose close did not finish before it triggered again.
    kept: list[Delivery] = []
    for delivery in deliveries:
        if closing or delivery.epoch < epoch:
            if delivery.state is State.PENDING and delivery.attempts == 0:
                continue  # never sent: nothing can exist in incident.io
            if delivery.state is State.FAILED and not delivery.incident_id:
                continue  # the create was refused: nothing to close
        kept.append(delivery)
    deliveries = kept
    for index, delivery in enumerate(deliveries):
        if not (closing or delivery.epoch < epoch):
            continue
        if not delivery.holds_incident and delivery.state is not State.FAILED:
            continue
        ref = destination_ref(delivery.destination, namespace)
        destination = context.destinations.get(ref)
        if (
            delivery.state is State.FAILED
            and destination is not None
            and (
                delivery.alert_generation == alert.generation
                and delivery.destination_generation == destination.generation
            )
        ):
            continue
        if destination is not None and destination.spec is not None and not destination.spec.closed_status_id:
            if delivery.incident_id:
                deliveries[index] = replace(delivery, state=State.LEFT_OPEN, waiting_for="", last_error="")
                events.append(
                    DeliveryEvent(
                        "LeftOpen",
                        ref,
                        delivery.reference,
                        f"Incident {delivery.reference} left open: the destination has no closedStatusId",
                    )
                )
                continue
        blocked = _blocked(destination, delivery.destination)
        if blocked:
            if alert.deleting and destination is None:
                # Nothing can close it any more; do not hold the object's deletion hostage.
                deliveries[index] = replace(delivery, state=State.LEFT_OPEN, waiting_for="", last_error=blocked)
                events.append(DeliveryEvent("LeftOpen", ref, delivery.reference, f"Incident left open: {blocked}"))
            else:
                deliveries[index] = replace(delivery, waiting_for=blocked)
            continue
        wait = _due(delivery, now)
        if wait is not None:
            requeue = _earliest(requeue, wait)
            continue
        assert destination is not None and destination.spec is not None
        updated = replace(
            delivery,
            state=State.CLOSING if delivery.incident_id else State.PENDING,
            # A close counts its own attempts; an unconfirmed create goes on counting the create's.
            attempts=1 if delivery.state is State.OPEN else delivery.attempts + 1,
            waiting_for="",
            next_attempt_at="",
            alert_generation=alert.generation,
            destination_generation=destination.generation,
        )
        deliveries[index] = updated
        close_request = EditIncidentRequest(
            incident_status_id=destination.spec.closed_status_id,
            notify_incident_channel=destination.spec.incident.notify_incident_channel,
        )
        if delivery.incident_id:
            actions.append(
                CloseIncident(ref, delivery.destination, delivery.epoch, delivery.incident_id, close_request)
            )
        elif alert.spec is not None:
            actions.append(
                OpenIncident(
                    destination=ref,
                    label=delivery.destination,
                    epoch=delivery.epoch,
                    request=create_request(
                        alert.spec,
                        alert.ref,
                        destination.spec,
                        destination.severity_ids,
                        delivery.rules,
                        delivery.idempotency_key,
                    ),
                    then_close=True,
                )
            )

    deliveries = _prune(deliveries, epoch)
    needs_finalizer = any(d.holds_incident for d in deliveries) or bool(actions)
    status = _status(context, epoch, observed_state, deliveries, acting=bool(actions))
    return Plan(status, tuple(actions), needs_finalizer, requeue, epoch, tuple(deliveries), tuple(events))


def _prune(deliveries: Sequence[Delivery], epoch: int) -> list[Delivery]:
    return [d for d in deliveries if d.state is not State.CLOSED or d.epoch > epoch - HISTORY_EPOCHS]


def _failure_message(error: IncidentIoError, action: str) -> str:
    text = str(error)
    if isinstance(error, Unauthorized | Forbidden):
        # Their str() is the fixed headline; the detail and the request id help incident.io support.
        detail = "; ".join(error.messages)
        text += f": {detail}" if detail else ""
        text += f" (request_id {error.request_id})" if error.request_id else ""
    hint = ""
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


def settle(context: AlertContext, executed: Plan, outcomes: Sequence[Outcome]) -> Settlement:
    """Fold the outcomes of the plan's calls into the status to write afterwards."""
    now, alert = context.now, context.alert
    deliveries = list(executed.deliveries)
    index_of = {(d.destination, d.epoch): i for i, d in enumerate(deliveries)}
    events: list[DeliveryEvent] = []
    requeue = executed.requeue_after
    stamp = format_time(now)
    for outcome in outcomes:
        index = index_of.get((outcome.label, outcome.epoch))
        if index is None:
            continue
        delivery = deliveries[index]
        ref = destination_ref(delivery.destination, alert.ref.namespace)
        if outcome.error is None:
            incident = outcome.incident
            if incident is not None and not delivery.incident_id:
                delivery = replace(
                    delivery,
                    incident_id=incident.id,
                    reference=incident.reference,
                    permalink=incident.permalink or "",
                    opened_at=stamp,
                )
                events.append(
                    DeliveryEvent("Created", ref, incident.reference, f"Incident {incident.reference} opened")
                )
            if outcome.closed:
                delivery = replace(delivery, state=State.CLOSED, closed_at=stamp)
                events.append(DeliveryEvent("Closed", ref, delivery.reference, f"Incident {delivery.reference} closed"))
            elif incident is not None:
                state = State.OPEN
                destination = context.destinations.get(ref)
                if executed.deliveries[index].state is State.PENDING and _closing(alert):
                    # Re-sent create for a resolved alert, and the destination cannot close it.
                    cannot_close = destination and destination.spec and not destination.spec.closed_status_id
                    state = State.LEFT_OPEN if cannot_close else State.CLOSING
                    if cannot_close:
                        events.append(
                            DeliveryEvent(
                                "LeftOpen",
                                ref,
                                incident.reference,
                                f"Incident {incident.reference} left open: the destination has no closedStatusId",
                            )
                        )
                delivery = replace(delivery, state=state)
            deliveries[index] = replace(delivery, last_error="", waiting_for="", next_attempt_at="")
            if deliveries[index].state is State.CLOSING:
                requeue = _earliest(requeue, 0.0)
            continue
        error = outcome.error
        action = "close" if delivery.incident_id else "create"
        message = _failure_message(error, action)
        if error.retryable or isinstance(error, Unauthorized | Forbidden):
            delay = retry_delay(delivery.attempts, context.retry_base)
            if isinstance(error, RateLimited) and error.retry_after is not None:
                delay = max(delay, error.retry_after)
            deliveries[index] = replace(
                delivery,
                state=State.CLOSING if delivery.incident_id and _closing(alert) else delivery.state,
                last_error=message,
                next_attempt_at=format_time(now + datetime.timedelta(seconds=delay)),
            )
            requeue = _earliest(requeue, delay)
        else:
            deliveries[index] = replace(delivery, state=State.FAILED, last_error=message, next_attempt_at="")
            events.append(DeliveryEvent("Failed", ref, delivery.reference, message))
    status = _status(context, executed.epoch, str(executed.status.get("observedState") or ""), deliveries)
    return Settlement(
        status=status,
        holds_incidents=any(d.holds_incident for d in deliveries),
        requeue_after=requeue,
        events=tuple(events),
    )


def _closing(alert: DataAlert) -> bool:
    return alert.deleting or (alert.spec is not None and alert.spec.state in CLOSING_STATES)


def _status(
    context: AlertContext,
    epoch: int,
    observed_state: str,
    deliveries: Sequence[Delivery],
    *,
    acting: bool = False,
) -> dict[str, Any]:
    alert = context.alert
    previous = alert.status.get("conditions") or ()
    current = [d for d in deliveries if d.epoch == epoch]
    ready, reason, message, progressing = _readiness(context, deliveries, current, acting)
    status: dict[str, Any] = {
        "observedGeneration": alert.generation,
        "observedState": observed_state,
        "epoch": epoch,
        "matchedRules": list(context.routing.matched_rules)
        if context.routing
        else list(alert.status.get("matchedRules") or ()),
        "incidents": ",".join(d.reference for d in current if d.reference),
        "deliveries": [d.to_json() for d in deliveries],
        "conditions": ready_conditions(
            ready=ready,
            reason=reason,
            message=message,
            generation=alert.generation,
            previous=previous,
            progressing=progressing,
            now=context.now,
        ),
    }
    return status


def _readiness(
    context: AlertContext, deliveries: Sequence[Delivery], current: Sequence[Delivery], acting: bool
) -> tuple[bool, str, str, bool]:
    """(ready, reason, message, progressing) for the alert's Ready condition."""
    alert = context.alert
    if alert.spec is None and not alert.deleting:
        return False, "InvalidSpec", f"{alert.spec_error}", False
    if _closing(alert):
        relevant = [d for d in deliveries if d.holds_incident or d.state in (State.FAILED, State.LEFT_OPEN)]
        failed = [d for d in relevant if d.state is State.FAILED]
        if failed:
            return False, "DeliveryFailed", _join(f"{d.destination}: {d.last_error}" for d in failed), False
        busy = [d for d in relevant if d.holds_incident]
        if busy:
            waiting = [d for d in busy if d.waiting_for]
            if waiting:
                return False, "WaitingForDestination", _join(d.waiting_for for d in waiting), True
            errors = [d for d in busy if d.last_error]
            if errors:
                return False, "Retrying", _join(f"{d.destination}: {d.last_error}" for d in errors), True
            return False, "Closing", "closing incidents in incident.io", True
        left = [d for d in relevant if d.state is State.LEFT_OPEN]
        if left:
            return (
                True,
                "LeftOpen",
                _join(
                    f"incident {d.reference or d.incident_id} in {d.destination} left open: "
                    + (d.last_error or "the destination has no closedStatusId")
                    for d in left
                ),
                False,
            )
        closed = [d for d in deliveries if d.state is State.CLOSED and d.epoch == int(alert.status.get("epoch") or 0)]
        if closed or any(d.state is State.CLOSED for d in deliveries):
            return (
                True,
                "Closed",
                _join(f"incident {d.reference} closed in {d.destination}" for d in closed) or ("incidents closed"),
                False,
            )
        return True, "Resolved", "the alert is resolved; no incident was open", False
    if context.routing is not None and not context.routing.routes:
        if context.routing.refused:
            return (
                False,
                "NoDestination",
                _join(f"rule {r.rule} names {r.destination}: {r.reason}" for r in context.routing.refused),
                False,
            )
        return True, "NoMatchingRule", "no AlertRule in this namespace matches this alert", False
    failed = [d for d in current if d.state is State.FAILED]
    if failed:
        return False, "DeliveryFailed", _join(f"{d.destination}: {d.last_error}" for d in failed), False
    waiting = [d for d in current if d.waiting_for]
    if waiting:
        return False, "WaitingForDestination", _join(d.waiting_for for d in waiting), True
    errors = [d for d in current if d.state is State.PENDING and d.last_error]
    if errors:
        return False, "Retrying", _join(f"{d.destination}: {d.last_error}" for d in errors), True
    pending = [d for d in current if d.state is State.PENDING]
    if pending or acting:
        return False, "Delivering", "opening incidents in incident.io", True
    return True, "Delivered", _join(f"incident {d.reference} open in {d.destination}" for d in current), False


def _join(parts: Any) -> str:
    return "; ".join(str(part) for part in parts)
