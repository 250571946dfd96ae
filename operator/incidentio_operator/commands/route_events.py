"""``route`` for destinations in delivery mode AlertEvent: the alert event they would get, as text and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from incidentio_operator.api import CLOSING_STATES, DataAlert, DataAlertSpec, DestinationSpec
from incidentio_operator.decisions.alertevents import alert_event
from incidentio_operator.incidentio import AlertEvent, AlertEventStatus

# Offline there is no UID (the API server assigns it) nor trigger epoch, so no deduplication key either.
KEY_AT_DELIVERY = "<derived at delivery from the alert's UID, the destination and the trigger epoch>"


def would_send(alert: DataAlert, spec: DataAlertSpec, destination: DestinationSpec, rules: Sequence[str]) -> AlertEvent:
    """The event the destination's alert source would get now: firing, or resolved for a closing alert."""
    status: AlertEventStatus = "resolved" if spec.state in CLOSING_STATES else "firing"
    prefix = destination.incident.name_prefix
    return alert_event(status, spec, alert.ref, alert.labels, prefix, rules, KEY_AT_DELIVERY)


def event_lines(event: AlertEvent, config_id: str) -> list[str]:
    """The event as ``route`` prints it, indented under its destination."""
    lines = [
        f"  delivery: AlertEvent to alert source {config_id} (POST /v2/alert_events/http/{config_id})",
        f"  status:   {event.status}",
        f"  title:    {event.title}",
        f"  key:      {event.deduplication_key}",
    ]
    if event.source_url:
        lines.append(f"  link:     {event.source_url}")
    lines.append(f"  metadata: {json.dumps(dict(event.metadata or {}), sort_keys=True)}")
    lines.append("  description:")
    lines += [f"    {line}" if line else "" for line in (event.description or "").splitlines()]
    return lines


def event_json(event: AlertEvent, config_id: str) -> dict[str, Any]:
    return {"alertSourceConfigId": config_id, **event.to_json()}
