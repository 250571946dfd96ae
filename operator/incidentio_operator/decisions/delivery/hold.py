"""Noise control in the delivery lifecycle: a delivery not yet sent is let through, deferred or suppressed first.

A held delivery is never a failure: it carries a reason and a message, and a Deferred one the time it is
looked at again. Only deliveries that never went out are held: once a create was sent, the incident
(maybe) exists and is followed like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from incidentio_operator.api import format_time
from incidentio_operator.decisions.delivery.model import (
    AlertContext,
    Delivery,
    DeliveryEvent,
    State,
    closing,
    destination_label,
)
from incidentio_operator.decisions.routing import Route
from incidentio_operator.decisions.suppression import Candidate, evaluate


@dataclass(frozen=True)
class Hold:
    """A delivery after noise control: let through (``held`` False) or held, with the Event and requeue it calls for."""

    delivery: Delivery
    held: bool
    event: DeliveryEvent | None = None
    requeue_after: float | None = None


def noise_control(context: AlertContext, route: Route, delivery: Delivery) -> Hold:
    """Let a fresh delivery through if any of its rules does (DESIGN.md §9); one already sent passes as it is."""
    fresh = delivery.state is State.DEFERRED or (delivery.state is State.PENDING and delivery.attempts == 0)
    if not fresh:
        return Hold(delivery, held=False)
    candidate = Candidate(context.alert, route.destination, delivery.destination, delivery.epoch, route.rules)
    verdict = evaluate(candidate, context.noise, context.now)
    if verdict.deliver:
        admitted = verdict.admitted_by if verdict.admitted_by != route.rules else ()
        cleared = replace(
            delivery,
            state=State.PENDING,
            admitted_by=admitted,
            reason="",
            message="",
            in_favour_of="",
            reevaluate_at="",
        )
        return Hold(cleared, held=False)
    until = verdict.deferred_until
    held = replace(
        delivery,
        state=State.DEFERRED if until else State.SUPPRESSED,
        reason=str(verdict.leading.reason),
        message=verdict.message,
        in_favour_of=next((h.in_favour_of for h in verdict.held if h.in_favour_of), ""),
        reevaluate_at=format_time(until) if until else "",
        waiting_for="",
        admitted_by=(),
    )
    event = None
    if (held.state, held.reason) != (delivery.state, delivery.reason):
        event = DeliveryEvent(str(held.state), route.destination, "", verdict.message, verdict)
    requeue = max((until - context.now).total_seconds(), 0.0) if until else None
    return Hold(held, held=True, event=event, requeue_after=requeue)


def release_held(context: AlertContext, deliveries: Sequence[Delivery], epoch: int) -> list[Delivery]:
    """Deferred deliveries that can no longer be due: of a resolved alert (or an earlier epoch), they become
    Suppressed and are never delivered; of a destination no rule routes to any more, they are dropped."""
    alert = context.alert
    routing = context.routing
    routed = {destination_label(r.destination, alert.ref.namespace) for r in routing.routes} if routing else set()
    released: list[Delivery] = []
    for delivery in deliveries:
        if delivery.state is not State.DEFERRED:
            released.append(delivery)
        elif closing(alert) or delivery.epoch < epoch:
            message = f"{delivery.message}; never delivered: the alert resolved before it was due"
            released.append(replace(delivery, state=State.SUPPRESSED, message=message, reevaluate_at=""))
        elif routing is None or delivery.destination in routed:
            released.append(delivery)
    return released
