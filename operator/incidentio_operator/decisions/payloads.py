"""Pure: the incident incident.io receives for an alert — name, summary, severity, idempotency key."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from incidentio_operator.api import DataAlertSpec, DestinationSpec, ObjectRef
from incidentio_operator.incidentio.models import CreateIncidentRequest

# incident.io's summary field is free text; keep it well below any practical limit.
SUMMARY_LIMIT = 4000


def idempotency_key(alert_uid: str, destination: ObjectRef, epoch: int) -> str:
    """Deterministic per (alert, destination, epoch): a retry or a restart re-sends the same key."""
    digest = hashlib.sha256(f"{alert_uid}|{destination}|{epoch}".encode()).hexdigest()
    return f"armor-{digest[:40]}"


def incident_name(prefix: str, title: str) -> str:
    return f"{prefix} {title}".strip() if prefix else title


def incident_summary(alert: DataAlertSpec, alert_ref: ObjectRef, rules: Sequence[str]) -> str:
    """Names, types, descriptions and timestamps only: never data values or credentials."""
    lines: list[str] = []
    lines.append(f"Source: {alert.source}")
    lines.append(f"Rules: {', '.join(rules)}")
    lines.append(f"Event type: {alert.event_type} (severity: {alert.severity})")
    if alert.asset.id or alert.asset.qualified_name:
        asset = alert.asset.id or "-"
        if alert.asset.qualified_name:
            asset += f" ({alert.asset.qualified_name})"
        lines.append(f"Asset: {asset}")
    if alert.changes:
        described = []
        for change in alert.changes:
            text = change.type + (f" {change.column}" if change.column else "")
            if change.from_type and change.to_type:
                text += f" ({change.from_type} -> {change.to_type})"
            elif change.from_type or change.to_type:
                text += f" (was {change.from_type})" if change.from_type else f" (now {change.to_type})"
            described.append(text)
        lines.append(f"Changes: {'; '.join(described)}")
    if alert.external_id:
        lines.append(f"Alert ID: {alert.external_id}")
    if alert.detected_at:
        lines.append(f"Detected at: {alert.detected_at}")
    lines.append(f"Kubernetes: kubectl -n {alert_ref.namespace} get dataalert {alert_ref.name}")
    facts = "\n".join(lines)
    description = alert.description.strip()
    if not description:
        return facts[:SUMMARY_LIMIT]
    # The facts (rules, source, asset, the way back to the object) always survive; a long
    # description is what gets shortened.
    room = SUMMARY_LIMIT - len(facts) - 2
    if len(description) > room:
        description = description[: max(room - 1, 0)] + "…"
    return f"{description}\n\n{facts}"


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
) -> CreateIncidentRequest:
    return CreateIncidentRequest(
        idempotency_key=key,
        name=incident_name(destination.incident.name_prefix, alert.title),
        summary=incident_summary(alert, alert_ref, rules),
        mode=destination.incident.mode,
        visibility=destination.incident.visibility,
        severity_id=severity_id(alert.severity, resolved_severities),
        incident_type_id=destination.incident.incident_type_id or None,
    )
