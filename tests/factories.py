"""Bodies of the three custom resources as the API server sends them, and incident.io answers, for unit tests."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from incidentio_operator.incidentio import Incident, IncidentIoError, IncidentStatus
from incidentio_operator.incidentio.errors import error_from_response

NAMESPACE = "data-platform"
DESTINATION = "incidentio-data-platform"
CLOSED_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG0"
NOW = datetime.datetime(2026, 11, 26, 10, 0, tzinfo=datetime.UTC)
API_VERSION = "alerting.armor.dev/v1alpha1"


def alert_spec(**overrides: Any) -> dict[str, Any]:
    """A critical schema_change alert on snowflake.prod_db.sales.orders; keyword arguments replace fields."""
    spec: dict[str, Any] = {
        "externalId": "alert_abc123",
        "title": "Column customer_id removed from orders",
        "description": "The column customer_id disappeared from sales.orders.",
        "eventType": "schema_change",
        "severity": "critical",
        "state": "triggered",
        "source": "AnomalyArmor",
        "asset": {
            "id": "6c1e0f4a",
            "qualifiedName": "snowflake.prod_db.sales.orders",
            "environment": "production",
            "database": "prod_db",
            "schema": "sales",
            "table": "orders",
        },
        "changes": [{"type": "column_removed", "column": "customer_id"}],
        "detectedAt": "2026-11-26T10:00:00Z",
    }
    spec.update(overrides)
    return spec


def alert_body(
    name: str = "orders-column-removed-7f3a",
    *,
    namespace: str = NAMESPACE,
    uid: str = "3f0c7a52-alert-uid",
    generation: int = 1,
    labels: Mapping[str, str] | None = None,
    status: Mapping[str, Any] | None = None,
    deleting: bool = False,
    spec: Mapping[str, Any] | None = None,
    **spec_overrides: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": uid,
        "generation": generation,
        "resourceVersion": "100",
        "labels": dict(labels if labels is not None else {"team": "payments"}),
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-26T11:00:00Z"
        metadata["finalizers"] = ["alerting.armor.dev/close-incidents"]
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "DataAlert",
        "metadata": metadata,
        "spec": dict(spec) if spec is not None else alert_spec(**spec_overrides),
    }
    if status is not None:
        body["status"] = dict(status)
    return body


def destination_body(
    name: str = DESTINATION,
    *,
    namespace: str = NAMESPACE,
    generation: int = 1,
    ready: bool = True,
    closed_status_id: str | None = CLOSED_STATUS_ID,
    notify_incident_channel: bool = True,
    suspend: bool = False,
    severity_ids: Mapping[str, Any] | None = None,
    spec: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A destination whose connection test ran for its current generation, passing when ``ready``."""
    if spec is None:
        built: dict[str, Any] = {
            "apiKeySecretRef": {"name": "incidentio-api-key", "key": "apiKey"},
            "incident": {
                "namePrefix": "[AnomalyArmor]",
                "visibility": "public",
                "mode": "standard",
                "notifyIncidentChannel": notify_incident_channel,
            },
            "baseURL": "http://127.0.0.1:8089",
            "suspend": suspend,
        }
        if closed_status_id is not None:
            built["closedStatusId"] = closed_status_id
        spec = built
    condition = {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": "Verified" if ready else "Unauthorized",
        "message": "Verified: API key 'ops'" if ready else "HTTP 401: Unauthorized",
        "lastTransitionTime": "2026-11-26T09:00:00Z",
    }
    status: dict[str, Any] = {"observedGeneration": generation, "conditions": [condition]}
    if severity_ids is not None:
        status["severityIds"] = dict(severity_ids)
    return {
        "apiVersion": API_VERSION,
        "kind": "IncidentIoDestination",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": generation},
        "spec": dict(spec),
        "status": status,
    }


def rule_body(
    name: str = "production-breaking-changes",
    *,
    namespace: str = NAMESPACE,
    destinations: Iterable[str | Mapping[str, str]] = (DESTINATION,),
    generation: int = 1,
    **spec: Any,
) -> dict[str, Any]:
    """A rule sending to ``destinations`` (names, or ``{name, namespace}`` references); other fields as given."""
    references = [{"name": item} if isinstance(item, str) else dict(item) for item in destinations]
    return {
        "apiVersion": API_VERSION,
        "kind": "AlertRule",
        "metadata": {"name": name, "namespace": namespace, "generation": generation},
        "spec": {**spec, "destinations": references},
    }


def incident(
    reference: str = "INC-123", incident_id: str = "01FDAG4SAP5TYPT98WGR2N7W91", *, status_category: str = "triage"
) -> Incident:
    """An incident as incident.io returns it after a create."""
    return Incident(
        id=incident_id,
        reference=reference,
        name="[AnomalyArmor] Column customer_id removed from orders",
        permalink=f"https://app.incident.io/incidents/{reference}",
        mode="standard",
        visibility="public",
        incident_status=IncidentStatus("01STATUS", "Triage", status_category, 1, None),
        severity=None,
        summary=None,
        created_at="2026-11-26T10:00:01Z",
    )


def incidentio_error(
    status: int,
    message: str = "something went wrong",
    *,
    request_id: str = "req_7f3a",
    operation: str = "create_incident",
    field: str | None = None,
    retry_after: float | None = None,
) -> IncidentIoError:
    """The typed error the client raises for an HTTP error response carrying incident.io's error envelope."""
    entry: dict[str, Any] = {"code": "error", "message": message}
    if field:
        entry["source"] = {"field": field}
    envelope = {"type": "error", "status": status, "request_id": request_id, "errors": [entry]}
    return error_from_response(operation, status, json.dumps(envelope).encode(), retry_after)


def with_status(body: Mapping[str, Any], status: Mapping[str, Any], **metadata: Any) -> dict[str, Any]:
    """The body after the operator wrote ``status`` (and any metadata changes, e.g. a new generation)."""
    return {**body, "metadata": {**body["metadata"], **metadata}, "status": dict(status)}


def with_spec(body: Mapping[str, Any], bump_generation: bool = True, **changes: Any) -> dict[str, Any]:
    """The body after a user edited its spec, as the API server stores it (generation bumped)."""
    metadata = dict(body["metadata"])
    if bump_generation:
        metadata["generation"] = int(metadata.get("generation") or 0) + 1
    return {**body, "metadata": metadata, "spec": {**body["spec"], **changes}}


def names(items: Sequence[Mapping[str, Any]], key: str = "destination") -> list[str]:
    return [str(item[key]) for item in items]
