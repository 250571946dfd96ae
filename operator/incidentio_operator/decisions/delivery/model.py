"""The delivery lifecycle's vocabulary: a delivery and its states, the actions on incident.io, their outcomes."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from incidentio_operator.api import CLOSING_STATES, DataAlert, Destination, ObjectRef
from incidentio_operator.api.alertsource import ALERT_EVENT_MODE
from incidentio_operator.decisions.delivery.record import PendingUpdate, SentRecord, UpdateIncident, UpdateTiming
from incidentio_operator.decisions.routing import Routing
from incidentio_operator.decisions.suppression import NoiseFacts, Verdict
from incidentio_operator.incidentio.alertsources import AlertEvent
from incidentio_operator.incidentio.errors import IncidentIoError
from incidentio_operator.incidentio.models import CreateIncidentRequest, EditIncidentRequest, Incident

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
    # Held back by noise control (DESIGN.md §9): not a failure, the alert stays Ready.
    SUPPRESSED = "Suppressed"
    DEFERRED = "Deferred"
    # Delivery mode AlertEvent (DESIGN.md §10): the firing event was accepted, then the resolved one.
    FIRING = "Firing"
    RESOLVED = "Resolved"


HELD_STATES = (State.SUPPRESSED, State.DEFERRED)


@dataclass(frozen=True)
class Delivery:
    """One incident (to be) opened in one destination for one trigger epoch of an alert; in mode AlertEvent,
    one alert (to be) fired and resolved under ``deduplication_key``."""

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
    # Noise control: the rules that let the delivery through (when not all of ``rules`` did), and for a
    # held delivery why (a Reason), in words, the incident it gave way to, and when it is looked at again.
    admitted_by: tuple[str, ...] = ()
    reason: str = ""
    message: str = ""
    in_favour_of: str = ""
    reevaluate_at: str = ""
    # "" for an incident (the mode every delivery had before alert events), ALERT_EVENT_MODE for an alert event.
    mode: str = ""
    deduplication_key: str = ""
    # The incident following its alert (updates.py): what it holds, the edit waiting to go, the edits made,
    # and custom fields left unset (a note, not a failure).
    sent: SentRecord | None = None
    pending_update: PendingUpdate | None = None
    last_updated_at: str = ""
    updates: int = 0
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "destination": self.destination,
            "rules": list(self.rules),
            "epoch": self.epoch,
            "state": str(self.state),
            "attempts": self.attempts,
        }
        optional = {
            "mode": self.mode,
            "idempotencyKey": self.idempotency_key,
            "deduplicationKey": self.deduplication_key,
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
            "admittedBy": list(self.admitted_by),
            "reason": self.reason,
            "message": self.message,
            "inFavourOf": self.in_favour_of,
            "reevaluateAt": self.reevaluate_at,
            "sent": self.sent.to_json() if self.sent else None,
            "pendingUpdate": self.pending_update.to_json() if self.pending_update else None,
            "lastUpdatedAt": self.last_updated_at,
            "updates": self.updates,
            "note": self.note,
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
            admitted_by=tuple(str(rule) for rule in data.get("admittedBy") or ()),
            reason=str(data.get("reason") or ""),
            message=str(data.get("message") or ""),
            in_favour_of=str(data.get("inFavourOf") or ""),
            reevaluate_at=str(data.get("reevaluateAt") or ""),
            mode=str(data.get("mode") or ""),
            deduplication_key=str(data.get("deduplicationKey") or ""),
            sent=SentRecord.from_json(data.get("sent")),
            pending_update=PendingUpdate.from_json(data.get("pendingUpdate")),
            last_updated_at=str(data.get("lastUpdatedAt") or ""),
            updates=int(data.get("updates") or 0),
            note=str(data.get("note") or ""),
        )

    @property
    def holds_incident(self) -> bool:
        """An incident (or a firing alert) exists, or may exist because a create (or firing event) went out."""
        return self.state in (State.OPEN, State.CLOSING, State.FIRING) or (
            self.state is State.PENDING and self.attempts > 0
        )

    @property
    def alert_event(self) -> bool:
        """Delivered as alert events to the destination's alert source, not as an incident."""
        return self.mode == ALERT_EVENT_MODE

    @property
    def delivered(self) -> bool:
        """incident.io confirmed the incident (or the firing alert): there is something to close."""
        return bool(self.incident_id) or (self.alert_event and bool(self.opened_at))


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


@dataclass(frozen=True)
class SendAlertEvent:
    """Mode AlertEvent: one event to the destination's alert source, firing or resolved (DESIGN.md §10)."""

    destination: ObjectRef
    label: str
    epoch: int
    event: AlertEvent


Action = OpenIncident | CloseIncident | UpdateIncident | SendAlertEvent


def closes(action: Action) -> bool:
    """The action closes an incident (a create re-sent for a resolved alert closes what it gets back), or
    resolves an alert."""
    if isinstance(action, SendAlertEvent):
        return action.event.status == "resolved"
    return isinstance(action, CloseIncident) or (isinstance(action, OpenIncident) and action.then_close)


@dataclass(frozen=True)
class Outcome:
    """What came back from one action: the incident, or the error."""

    label: str
    epoch: int
    incident: Incident | None = None
    closed: bool = False
    error: IncidentIoError | None = None
    # The incident turned out to be over already in incident.io (how, in words: ended.how_it_ended).
    ended: str = ""
    # Mode AlertEvent: the status of the event incident.io accepted (firing or resolved).
    event_status: str = ""
    # Set for the outcome of an edit that kept an open incident current.
    update: UpdateIncident | None = None


@dataclass(frozen=True)
class DeliveryEvent:
    """Something a human wants to see in ``kubectl describe`` and in the destination's counters."""

    # Created | Closed | Ended | Failed | LeftOpen | Suppressed | Deferred | Updated | UpdateFailed | Firing | Resolved
    action: str
    destination: ObjectRef
    reference: str
    message: str
    # Suppressed and Deferred: every reason the rules (or the snooze) gave.
    verdict: Verdict | None = None


@dataclass(frozen=True)
class AlertContext:
    alert: DataAlert
    routing: Routing | None
    destinations: Mapping[ObjectRef, Destination]
    now: datetime.datetime
    retry_base: float = RETRY_BASE_SECONDS
    noise: NoiseFacts = field(default_factory=NoiseFacts)
    # Destinations whose last usable API key the controller holds in memory: their incidents can still be
    # closed when their Secret is gone or they are being deleted (a namespace teardown deletes both).
    keys_held: frozenset[ObjectRef] = frozenset()
    # Incidents a read found over in incident.io, by (destination label, epoch): how they ended.
    ended: Mapping[tuple[str, int], str] = field(default_factory=dict)
    # Set (to why) when the alert has left this replica's shard: it only finishes the incidents it opened.
    outside_shard: str = ""
    update_timing: UpdateTiming = field(default_factory=UpdateTiming)
    # The operator's --settled-alert-ttl in seconds (None: settled alerts are kept), for alerts that set none.
    settled_ttl: float | None = None


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


def closing(alert: DataAlert) -> bool:
    """The alert's incidents are to be closed: it resolved, was dismissed or is being deleted."""
    return alert.deleting or (alert.spec is not None and alert.spec.state in CLOSING_STATES)


def earliest(current: float | None, candidate: float | None) -> float | None:
    """The sooner of two requeue delays in seconds (None: no requeue)."""
    if candidate is None:
        return current
    return candidate if current is None else min(current, candidate)


def unchanged_since_failure(delivery: Delivery, alert: DataAlert, destination: Destination | None) -> bool:
    """A permanently failed delivery stays failed until the alert or the destination changes."""
    return (
        delivery.state is State.FAILED
        and destination is not None
        and delivery.alert_generation == alert.generation
        and delivery.destination_generation == destination.generation
    )


def prune(deliveries: Sequence[Delivery], epoch: int) -> list[Delivery]:
    """Closed and suppressed deliveries of the last HISTORY_EPOCHS epochs stay in the status as history; older
    ones go, except a destination's last incident when only suppressed epochs followed it: its cooldown
    counts from it, after a restart too."""
    cooling = _last_incident_before_suppressions(deliveries)
    return [
        d
        for d in deliveries
        if d.state not in (State.CLOSED, State.RESOLVED, State.SUPPRESSED)
        or d.epoch > epoch - HISTORY_EPOCHS
        or d in cooling
    ]


def _last_incident_before_suppressions(deliveries: Sequence[Delivery]) -> list[Delivery]:
    kept = []
    for destination in {d.destination for d in deliveries}:
        mine = sorted((d for d in deliveries if d.destination == destination), key=lambda d: d.epoch)
        opened = [d for d in mine if d.delivered]
        if opened and any(d.state is State.SUPPRESSED for d in mine if d.epoch > opened[-1].epoch):
            kept.append(opened[-1])
    return kept
