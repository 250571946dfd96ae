"""Pure: the alert events incident.io receives for an alert in delivery mode AlertEvent — title, description,
deduplication key, metadata and link (DESIGN.md §10; AlertEventsCreateHTTPPayloadV2 in the reference spec)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from incidentio_operator.api import GROUP, DataAlertSpec, ObjectRef
from incidentio_operator.decisions.payloads import describe_change, incident_name, incident_summary
from incidentio_operator.incidentio.alertsources import AlertEvent, AlertEventStatus

TEST_EVENT_DESCRIPTION = "Connection test from incidentio-operator: fired and resolved at once. Safe to ignore."


def deduplication_key(alert_uid: str, destination: ObjectRef, epoch: int) -> str:
    """Deterministic per (alert, destination, epoch), as the idempotency key is: a retry, a restart or a
    duplicate watch event sends the same key, so incident.io keeps one alert, and the resolved event
    finds it. Distinct from the idempotency key, so a destination that changes mode never mixes the two."""
    digest = hashlib.sha256(f"alert-event|{alert_uid}|{destination}|{epoch}".encode()).hexdigest()
    return f"armor-{digest[:40]}"


def alert_metadata(
    alert: DataAlertSpec, alert_ref: ObjectRef, labels: Mapping[str, str], rules: Sequence[str]
) -> dict[str, Any]:
    """What an alert route can filter and group on: names and types only, never data values or credentials.

    Shape: ``event_type``, ``severity``, ``source``, ``rules``, ``asset`` (its non-empty fields: ``id``,
    ``qualified_name``, ``environment``, ``database``, ``schema``, ``table``), ``data_alert``
    (``namespace``, ``name``, ``labels``), and when set ``external_id``, ``detected_at``, ``changes``.
    """
    asset = alert.asset
    fields = {
        "id": asset.id,
        "qualified_name": asset.qualified_name,
        "environment": asset.environment,
        "database": asset.database,
        "schema": asset.schema,
        "table": asset.table,
    }
    metadata: dict[str, Any] = {
        "event_type": alert.event_type,
        "severity": alert.severity,
        "source": alert.source,
        "rules": list(rules),
        "asset": {key: value for key, value in fields.items() if value},
        "data_alert": {"namespace": alert_ref.namespace, "name": alert_ref.name, "labels": _users_labels(labels)},
    }
    optional = {
        "external_id": alert.external_id,
        "detected_at": alert.detected_at,
        "changes": [describe_change(change) for change in alert.changes],
    }
    metadata.update({key: value for key, value in optional.items() if value})
    return metadata


def _users_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The alert's labels without the operator's own bookkeeping (its owner label), which would otherwise
    change between the firing and the resolved event."""
    return {key: value for key, value in labels.items() if not key.startswith(f"{GROUP}/")}


def alert_event(
    status: AlertEventStatus,
    alert: DataAlertSpec | None,
    alert_ref: ObjectRef,
    labels: Mapping[str, str],
    name_prefix: str,
    rules: Sequence[str],
    key: str,
) -> AlertEvent:
    """The event for one delivery: the title bounded like an incident's name, the description the same
    bounded summary an incident gets. A resolved event for an alert whose spec no longer parses still
    resolves by its key, under a title naming the DataAlert."""
    if alert is None:
        return AlertEvent(
            status=status, title=incident_name(name_prefix, f"DataAlert {alert_ref}"), deduplication_key=key
        )
    return AlertEvent(
        status=status,
        title=incident_name(name_prefix, alert.title),
        deduplication_key=key,
        description=incident_summary(alert, alert_ref, rules),
        metadata=alert_metadata(alert, alert_ref, labels, rules),
        source_url=alert.link or None,
    )


def connection_test_events(name_prefix: str, key: str) -> tuple[AlertEvent, AlertEvent]:
    """The connection test's pair under its own key: firing, then resolved at once."""
    title = incident_name(name_prefix, "Connection test")
    firing = AlertEvent(status="firing", title=title, deduplication_key=key, description=TEST_EVENT_DESCRIPTION)
    return firing, AlertEvent(status="resolved", title=title, deduplication_key=key)
