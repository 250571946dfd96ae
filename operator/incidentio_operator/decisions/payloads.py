"""Pure: the incident incident.io receives for an alert — name, summary, severity, custom fields, idempotency key."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from incidentio_operator.api import Change, DataAlertSpec, DestinationSpec, ObjectRef
from incidentio_operator.incidentio.customfields import CustomFieldEntryPayload
from incidentio_operator.incidentio.models import CreateIncidentRequest

# The product's own bound on the summary: the reference spec (IncidentsCreatePayloadV2.summary) sets no
# maximum, and a summary is read by people in Slack and the incident page, not parsed.
SUMMARY_LIMIT = 4000
# incident.io's reference spec (IncidentsCreatePayloadV2.name, IncidentEditPayloadV2.name) and its API
# docs (docs.incident.io/api-reference/incidents-v2/create) state no maximum for the name; the name is
# shown as the incident's title and seeds its Slack channel name (Slack caps those at 80 characters, and
# incident.io shortens them itself). 255 keeps every name a database varchar(255) would hold.
NAME_LIMIT = 255
ELLIPSIS = "…"


def idempotency_key(alert_uid: str, destination: ObjectRef, epoch: int) -> str:
    """Deterministic per (alert, destination, epoch): a retry or a restart re-sends the same key."""
    digest = hashlib.sha256(f"{alert_uid}|{destination}|{epoch}".encode()).hexdigest()
    return f"armor-{digest[:40]}"


def incident_name(prefix: str, title: str) -> str:
    """``<prefix> <title>``, at most NAME_LIMIT characters (a long title ends in an ellipsis)."""
    name = f"{prefix} {title}".strip() if prefix else title
    return name if len(name) <= NAME_LIMIT else name[: NAME_LIMIT - 1] + ELLIPSIS


def describe_change(change: Change) -> str:
    """One schema change as the summary lists it: type, column, and the type change if any."""
    text = change.type + (f" {change.column}" if change.column else "")
    if change.from_type and change.to_type:
        text += f" ({change.from_type} -> {change.to_type})"
    elif change.from_type or change.to_type:
        text += f" (was {change.from_type})" if change.from_type else f" (now {change.to_type})"
    return text


def incident_summary(alert: DataAlertSpec, alert_ref: ObjectRef, rules: Sequence[str]) -> str:
    """The description first, then the facts; at most SUMMARY_LIMIT characters.

    Names, types, descriptions and timestamps only: never data values or credentials. When it is too
    long, the list of changes is shortened first ("… and N more"), then the description; the facts
    that lead back to the alert (source, rules, asset, the kubectl coordinates) always stay.
    """
    head, tail = _facts(alert, alert_ref, rules)
    description = alert.description.strip()
    changes = [describe_change(change) for change in alert.changes]
    fixed = sum(len(line) + 1 for line in (*head, *tail))  # each line and its newline
    room = SUMMARY_LIMIT - fixed - (len(description) + 2 if description else 0)
    shown = _fit_changes(changes, room)
    facts = "\n".join([*head, *([f"Changes: {shown}"] if shown else []), *tail])
    if not description:
        return facts[:SUMMARY_LIMIT]
    room = SUMMARY_LIMIT - len(facts) - 2
    if len(description) > room:
        description = description[: max(room - 1, 0)] + ELLIPSIS
    return f"{description}\n\n{facts}"


def _facts(alert: DataAlertSpec, alert_ref: ObjectRef, rules: Sequence[str]) -> tuple[list[str], list[str]]:
    """The summary's fact lines before and after the list of changes."""
    head = [
        f"Source: {alert.source}",
        f"Rules: {', '.join(rules)}",
        f"Event type: {alert.event_type} (severity: {alert.severity})",
    ]
    if alert.asset.id or alert.asset.qualified_name:
        asset = alert.asset.id or "-"
        if alert.asset.qualified_name:
            asset += f" ({alert.asset.qualified_name})"
        head.append(f"Asset: {asset}")
    tail: list[str] = []
    if alert.external_id:
        tail.append(f"Alert ID: {alert.external_id}")
    if alert.detected_at:
        tail.append(f"Detected at: {alert.detected_at}")
    if alert.link:
        tail.append(f"Link: {alert.link}")
    tail.append(f"Kubernetes: kubectl -n {alert_ref.namespace} get dataalert {alert_ref.name}")
    return head, tail


def _fit_changes(changes: Sequence[str], room: int) -> str:
    """As many changes as fit in ``room`` characters (with "Changes: "), the rest counted as "… and N more"."""
    text = "; ".join(changes)
    budget = room - len("Changes: ") - 1
    if len(text) <= budget:
        return text
    shown: list[str] = []
    for index, change in enumerate(changes):
        rest = f"{ELLIPSIS} and {len(changes) - index} more"
        candidate = "; ".join([*shown, change])
        if len(candidate) + 2 + len(f"{ELLIPSIS} and {len(changes) - index - 1} more") > budget:
            return "; ".join([*shown, rest]) if shown or len(rest) <= budget else ""
        shown.append(change)
    return "; ".join(shown)


def severity_id(alert_severity: str, resolved: Mapping[str, Any]) -> str | None:
    """The incident.io severity ID for an alert severity, from the IDs the connection test resolved."""
    by_alert = resolved.get("map")
    if isinstance(by_alert, Mapping) and by_alert.get(alert_severity):
        return str(by_alert[alert_severity])
    default = resolved.get("default")
    return str(default) if default else None


def create_request(
    alert: DataAlertSpec,
    alert_ref: ObjectRef,
    destination: DestinationSpec,
    resolved_severities: Mapping[str, Any],
    rules: Sequence[str],
    key: str,
    custom_fields: Sequence[CustomFieldEntryPayload] = (),
) -> CreateIncidentRequest:
    """The create for an alert; ``custom_fields`` are the destination's values for it (decisions/customfields.py)."""
    return CreateIncidentRequest(
        idempotency_key=key,
        name=incident_name(destination.incident.name_prefix, alert.title),
        summary=incident_summary(alert, alert_ref, rules),
        mode=destination.incident.mode,
        visibility=destination.incident.visibility,
        severity_id=severity_id(alert.severity, resolved_severities),
        incident_type_id=destination.incident.incident_type_id or None,
        custom_field_entries=tuple(custom_fields),
    )
