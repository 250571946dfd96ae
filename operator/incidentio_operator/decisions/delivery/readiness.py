"""An alert's status and its Ready condition, from its deliveries: what a user reads in ``kubectl get``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from incidentio_operator.api import ready_conditions
from incidentio_operator.decisions.delivery.ended import ENDED_REASON
from incidentio_operator.decisions.delivery.model import HELD_STATES, AlertContext, Delivery, State, closing
from incidentio_operator.decisions.delivery.retention import retention_status
from incidentio_operator.decisions.delivery.updates import open_note


def alert_status(
    context: AlertContext,
    epoch: int,
    observed_state: str,
    deliveries: Sequence[Delivery],
    *,
    acting: bool = False,
) -> dict[str, Any]:
    """The alert's whole status: epoch, matched rules, deliveries and the Ready/Reconciling/Stalled conditions."""
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
    status.update(retention_status(alert, epoch, deliveries, context.settled_ttl, context.now))
    return status


Readiness = tuple[bool, str, str, bool]


def _readiness(
    context: AlertContext, deliveries: Sequence[Delivery], current: Sequence[Delivery], acting: bool
) -> Readiness:
    """(ready, reason, message, progressing) for the alert's Ready condition."""
    alert = context.alert
    if alert.spec is None and not alert.deleting:
        return False, "InvalidSpec", f"{alert.spec_error}", False
    if closing(alert):
        return _closing_readiness(context, deliveries)
    if context.outside_shard:
        return True, "OutsideShard", context.outside_shard, False
    if context.routing is not None and not context.routing.routes:
        if context.routing.refused:
            refused = _join(f"rule {r.rule} names {r.destination}: {r.reason}" for r in context.routing.refused)
            return False, "NoDestination", refused, False
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
        doing = "sending alert events to" if pending and all(d.alert_event for d in pending) else "opening incidents in"
        return False, "Delivering", f"{doing} incident.io", True
    held = [d for d in current if d.state in HELD_STATES]
    ended = [d for d in current if d.reason == ENDED_REASON]
    opened = [_opened(d) for d in current if d.state not in HELD_STATES and d.reason != ENDED_REASON]
    noted = [f"{d.destination}: {d.state}: {d.message}" for d in held]
    if ended and not opened:
        # A responder ended it: the operator leaves it so, and opens no other until the alert triggers again.
        told = _join(f"{d.message} ({d.destination}); no new incident until the alert triggers again" for d in ended)
        return True, ENDED_REASON, _join([told, *noted]), False
    noted += [f"{d.message} ({d.destination})" for d in ended]
    if held and not opened:
        # Held back by noise control on purpose: Ready, like an alert no rule matches.
        reason = "Deferred" if any(d.state is State.DEFERRED for d in held) else "Suppressed"
        return True, reason, _join(noted), False
    return True, "Delivered", _join([*opened, *noted]), False


def _closing_readiness(context: AlertContext, deliveries: Sequence[Delivery]) -> Readiness:
    """Readiness of an alert whose incidents are being closed: done once none is left to close."""
    alert = context.alert
    relevant = [d for d in deliveries if d.holds_incident or d.state in (State.FAILED, State.LEFT_OPEN)]
    failed = [d for d in relevant if d.state is State.FAILED]
    if failed:
        return False, "DeliveryFailed", _join(f"{d.destination}: {d.last_error}" for d in failed), False
    busy = [d for d in relevant if d.holds_incident]
    waiting = [d for d in busy if d.waiting_for]
    if waiting:
        return False, "WaitingForDestination", _join(d.waiting_for for d in waiting), True
    errors = [d for d in busy if d.last_error]
    if errors:
        return False, "Retrying", _join(f"{d.destination}: {d.last_error}" for d in errors), True
    if busy:
        doing = "resolving alerts in" if all(d.alert_event for d in busy) else "closing incidents in"
        return False, "Closing", f"{doing} incident.io", True
    left = [d for d in relevant if d.state is State.LEFT_OPEN]
    if left:
        message = _join(
            f"incident {d.reference or d.incident_id} in {d.destination} left open: "
            + (d.last_error or "the destination has no closedStatusId")
            for d in left
        )
        return True, "LeftOpen", message, False
    closed = [d for d in deliveries if d.state is State.CLOSED and d.epoch == int(alert.status.get("epoch") or 0)]
    if closed or any(d.state is State.CLOSED for d in deliveries):
        message = _join(_closed_words(d) for d in closed) or "incidents closed"
        return True, "Closed", message, False
    resolved = [
        f"alert {d.deduplication_key} resolved in {d.destination}" for d in deliveries if d.state is State.RESOLVED
    ]
    if resolved:
        return True, "Resolved", _join(resolved), False
    return True, "Resolved", "the alert is resolved; no incident was open", False


def _opened(delivery: Delivery) -> str:
    if delivery.alert_event:
        return f"alert {delivery.deduplication_key} firing in {delivery.destination}"
    note = open_note(delivery)
    return f"incident {delivery.reference} open in {delivery.destination}" + (f" ({note})" if note else "")


def _closed_words(delivery: Delivery) -> str:
    if delivery.reason == ENDED_REASON:
        return f"{delivery.message} ({delivery.destination})"
    return f"incident {delivery.reference} closed in {delivery.destination}"


def _join(parts: Any) -> str:
    return "; ".join(str(part) for part in parts)
