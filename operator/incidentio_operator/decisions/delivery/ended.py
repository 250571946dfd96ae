"""Incidents that ended in incident.io: what a read of one says, and how its delivery records it.

A responder may close, decline, merge or cancel an incident, or delete it, while its alert is still
triggered or before the operator's own close arrives. The operator never fights that decision: the
delivery is recorded as closed, with the reason EndedInIncidentIo and a message saying how, and no
second incident is opened for that trigger epoch (DESIGN.md §11).
"""

from __future__ import annotations

from dataclasses import replace

from incidentio_operator.decisions.delivery.model import Delivery, State
from incidentio_operator.incidentio.models import Incident

ENDED_REASON = "EndedInIncidentIo"


def how_it_ended(incident: Incident | None, closed_status_id: str) -> str:
    """Why the incident counts as over, or '' while it is not; None for ``incident`` means it is gone (404).

    Terminal status categories (closed, declined, merged, canceled) are those of IncidentStatusV2.category
    in the reference spec; the operator's own closed status is not "ended elsewhere" but simply closed.
    """
    if incident is None:
        return "deleted in incident.io"
    status = incident.incident_status
    if not status.is_terminal:
        return ""
    if status.category == "closed" and status.id == closed_status_id:
        return f"closed in incident.io (status {status.name})"
    return f"{status.category} in incident.io (status {status.name})"


def record_ended(delivery: Delivery, how: str, when: str) -> Delivery:
    """The delivery of an incident that ended in incident.io: closed, saying how, no longer retried."""
    return replace(
        delivery,
        state=State.CLOSED,
        closed_at=delivery.closed_at or when,
        reason=ENDED_REASON,
        message=f"incident {delivery.reference or delivery.incident_id} was {how}",
        last_error="",
        waiting_for="",
        next_attempt_at="",
    )


def ended_event_message(delivery: Delivery, how: str) -> str:
    """The Event's words for an incident that ended in incident.io."""
    return f"Incident {delivery.reference or delivery.incident_id} was {how}; the operator leaves it as it is"
