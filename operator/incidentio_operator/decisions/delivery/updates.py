"""An open incident follows its alert (DESIGN.md §11): what changed of what was sent, when the edit goes.

While a delivery is Open, every plan compares the incident the alert would give now (``create_request``:
name, summary, severity, custom field values) with the digests recorded when it was last sent. A
difference waits until the alert has been quiet for ``UpdateTiming.quiet`` seconds (at most
``UpdateTiming.longest`` after the first change), so a burst of spec changes becomes one edit carrying
only the fields that changed. A change back to what was sent cancels the edit; nothing is sent for an
incident that is not Open in the current epoch, nor for a destination with ``spec.incident.updates: Off``.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from incidentio_operator.api import Destination, ObjectRef, format_time, parse_time
from incidentio_operator.decisions.customfields import FieldValues, field_values
from incidentio_operator.decisions.delivery.model import (
    AlertContext,
    Delivery,
    DeliveryEvent,
    Outcome,
    State,
    closing,
    destination_ref,
    retry_delay,
)
from incidentio_operator.decisions.delivery.record import PendingUpdate, SentRecord, UpdateIncident, digest
from incidentio_operator.decisions.payloads import create_request
from incidentio_operator.incidentio.customfields import CustomFieldEntryPayload
from incidentio_operator.incidentio.errors import Forbidden, IncidentIoError, RateLimited, Unauthorized
from incidentio_operator.incidentio.models import CreateIncidentRequest, EditIncidentRequest

NAME, SUMMARY, SEVERITY = "name", "summary", "severity"


@dataclass(frozen=True)
class Step:
    """One delivery after following its alert: the edit to send now, or when to look again."""

    delivery: Delivery
    action: UpdateIncident | None = None
    requeue_after: float | None = None


def wanted_incident(
    context: AlertContext, destination: Destination, delivery: Delivery
) -> tuple[CreateIncidentRequest, FieldValues]:
    """The incident the alert gives now (as a create would send it), and its custom field values."""
    alert = context.alert
    assert alert.spec is not None and destination.spec is not None
    values = field_values(
        destination.spec.incident.custom_fields, destination.custom_field_ids, alert.spec, alert.labels
    )
    request = create_request(
        alert.spec,
        alert.ref,
        destination.spec,
        destination.severity_ids,
        delivery.rules,
        delivery.idempotency_key,
        values.entries,
    )
    return request, values


def fingerprint(request: CreateIncidentRequest) -> dict[str, str]:
    """The digests of what the request sets: name, summary, severity, and each custom field by ID."""
    fields = {NAME: digest(request.name), SUMMARY: digest(request.summary or "")}
    if request.severity_id:
        fields[SEVERITY] = digest(request.severity_id)
    for entry in request.custom_field_entries:
        fields[entry.custom_field_id] = digest(entry.to_json()["values"])
    return fields


def opening(
    context: AlertContext, destination: Destination, delivery: Delivery
) -> tuple[Delivery, CreateIncidentRequest]:
    """The create for a delivery, and the delivery recording what it sends: its digests and unset fields."""
    request, values = wanted_incident(context, destination, delivery)
    sent = SentRecord(context.alert.generation, fingerprint(request))
    return replace(delivery, sent=sent, pending_update=None, note=_note(values)), request


def follow_alert(context: AlertContext, delivery: Delivery, epoch: int) -> Step:
    """For an Open delivery of the current epoch: the edit to send now, the wait before it, or nothing."""
    destination = _followed(context, delivery, epoch)
    if destination is None:
        return Step(delivery)
    if destination.spec is not None and not destination.spec.incident.updates:
        return Step(replace(delivery, pending_update=None))
    request, values = wanted_incident(context, destination, delivery)
    wanted = fingerprint(request)
    delivery = replace(delivery, note=_note(values))
    if delivery.sent is None:
        # Opened before deliveries recorded what they sent: the incident is taken to hold the alert as it is.
        return Step(replace(delivery, sent=SentRecord(context.alert.generation, wanted)))
    changed = _changed(wanted, delivery.sent.fields, values.managed)
    if not changed:
        return Step(replace(delivery, pending_update=None))
    after = _after_edit(wanted, delivery.sent.fields)
    pending = _pending(context, delivery.pending_update, digest(after))
    delivery = replace(delivery, pending_update=pending)
    due = parse_time(pending.due_at)
    if pending.refused or due is None:
        return Step(delivery)
    if due > context.now:
        return Step(delivery, requeue_after=(due - context.now).total_seconds())
    return Step(delivery, follow_up_action(context, destination, delivery, request, changed, after))


def follow_up_action(
    context: AlertContext,
    destination: Destination,
    delivery: Delivery,
    wanted: CreateIncidentRequest,
    changed: Sequence[str],
    after: Mapping[str, str],
) -> UpdateIncident:
    """The call that brings incident.io up to date with the alert: an edit with only the ``changed`` fields.

    The one place that decides how a change of an open delivery reaches incident.io. In AlertEvent mode
    (DESIGN.md §10) the same change is a new ``firing`` event under the delivery's deduplication key: that
    mode returns its event action from here instead of an edit.
    """
    assert destination.spec is not None
    entries = {entry.custom_field_id: entry for entry in wanted.custom_field_entries}
    fields = tuple(
        entries.get(key) or CustomFieldEntryPayload(key, ()) for key in changed if key not in (NAME, SUMMARY, SEVERITY)
    )
    request = EditIncidentRequest(
        notify_incident_channel=destination.spec.incident.notify_incident_channel,
        name=wanted.name if NAME in changed else None,
        summary=wanted.summary if SUMMARY in changed else None,
        severity_id=wanted.severity_id if SEVERITY in changed else None,
        custom_field_entries=fields or None,
    )
    ref = destination_ref(delivery.destination, context.alert.ref.namespace)
    return UpdateIncident(
        ref,
        delivery.destination,
        delivery.epoch,
        delivery.incident_id,
        request,
        after,
        context.alert.generation,
        tuple(changed),
    )


def settle_update(
    context: AlertContext, delivery: Delivery, outcome: Outcome
) -> tuple[Delivery, float | None, DeliveryEvent | None]:
    """The delivery after its edit (outcome.update): what incident.io now holds, or when to try again."""
    action = outcome.update
    assert action is not None
    ref, now = action.destination, context.now
    if outcome.error is None:
        updated = replace(
            delivery,
            sent=SentRecord(action.generation, action.fields),
            pending_update=None,
            last_updated_at=format_time(now),
            updates=delivery.updates + 1,
            last_error="",
        )
        what = ", ".join(_field_names(action.changed, context, ref))
        return (
            updated,
            None,
            DeliveryEvent("Updated", ref, delivery.reference, f"Incident {delivery.reference} updated: {what}"),
        )
    error = outcome.error
    pending = delivery.pending_update or PendingUpdate(digest(action.fields), format_time(now))
    message = f"update of incident {delivery.reference} refused: {_with_detail(error)}"
    if error.retryable or isinstance(error, Unauthorized | Forbidden):
        delay = retry_delay(pending.failures + 1, context.retry_base)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        due = format_time(now + datetime.timedelta(seconds=math.ceil(delay)))
        retried = replace(pending, failures=pending.failures + 1, due_at=due)
        return replace(delivery, pending_update=retried, last_error=message), delay, None
    refused = replace(pending, refused=True, due_at="")
    event = DeliveryEvent("UpdateFailed", ref, delivery.reference, message)
    return replace(delivery, pending_update=refused, last_error=message), None, event


def open_note(delivery: Delivery) -> str:
    """What a user should know of an open incident besides its reference: a refused edit, fields left unset."""
    return "; ".join(part for part in (delivery.last_error, delivery.note) if part)


def _followed(context: AlertContext, delivery: Delivery, epoch: int) -> Destination | None:
    """The destination of an Open delivery of the current epoch, when it can take calls now."""
    alert = context.alert
    if alert.spec is None or closing(alert) or delivery.state is not State.OPEN:
        return None
    if delivery.epoch != epoch or not delivery.incident_id:
        return None
    destination = context.destinations.get(destination_ref(delivery.destination, alert.ref.namespace))
    if destination is None or destination.spec is None or destination.spec.suspend or not destination.ready:
        return None
    return destination


def _changed(wanted: Mapping[str, str], sent: Mapping[str, str], managed: Sequence[str]) -> tuple[str, ...]:
    """The fields whose value differs from what incident.io holds; a severity that went away is not one
    (an edit cannot unset it), a custom field whose value went away is (an edit unsets it)."""
    keys = [NAME, SUMMARY, *([SEVERITY] if SEVERITY in wanted else []), *managed]
    return tuple(key for key in keys if wanted.get(key) != sent.get(key))


def _after_edit(wanted: Mapping[str, str], sent: Mapping[str, str]) -> dict[str, str]:
    """What incident.io holds once the edit went: the wanted digests, and a severity no edit can unset."""
    after = dict(wanted)
    if SEVERITY not in after and SEVERITY in sent:
        after[SEVERITY] = sent[SEVERITY]
    return after


def _pending(context: AlertContext, pending: PendingUpdate | None, wanted: str) -> PendingUpdate:
    """The edit waiting to go: unchanged while the alert gives the same, otherwise due once it has been quiet."""
    if pending is not None and pending.digest == wanted:
        return pending
    now, timing = context.now, context.update_timing
    since = (parse_time(pending.since) if pending is not None else None) or now
    due = min(now + datetime.timedelta(seconds=timing.quiet), since + datetime.timedelta(seconds=timing.longest))
    # Statuses keep whole seconds: round up, so the edit never goes before the alert was quiet long enough.
    due = due.replace(microsecond=0) + datetime.timedelta(seconds=1 if due.microsecond else 0)
    return PendingUpdate(wanted, format_time(since), format_time(due))


def _note(values: FieldValues) -> str:
    return "; ".join(values.notes)


def _with_detail(error: IncidentIoError) -> str:
    """The error as the status shows it; a 401 or 403 says only its headline, so add what incident.io said."""
    if not isinstance(error, Unauthorized | Forbidden):
        return str(error)
    detail = "; ".join(error.messages)
    return (
        f"{error}"
        + (f": {detail}" if detail else "")
        + (f" (request_id {error.request_id})" if error.request_id else "")
    )


def _field_names(changed: Sequence[str], context: AlertContext, ref: ObjectRef) -> list[str]:
    """The changed fields as a user knows them: name, summary, severity, and custom fields by their names."""
    destination = context.destinations.get(ref)
    names = {
        str(info.get("id")): str(info.get("name") or field)
        for field, info in (destination.custom_field_ids.items() if destination else ())
        if isinstance(info, Mapping)
    }
    return [names.get(key, key) for key in changed]
