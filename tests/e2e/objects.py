"""Small builders of the custom objects the end-to-end tests apply."""

from __future__ import annotations

from typing import Any

from incidentio_operator.standins.simulator import CLOSED_STATUS_ID

GV = "alerting.armor.dev/v1alpha1"
NS = "team-a"


def namespace(name: str = NS) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def secret(key: str, name: str = "incidentio-key", ns: str = NS, field: str = "apiKey") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": "Opaque",
        "stringData": {field: key},
    }


def destination(
    base_url: str,
    name: str = "incidentio",
    ns: str = NS,
    *,
    secret_name: str = "incidentio-key",
    closed_status_id: str | None = CLOSED_STATUS_ID,
    on_create: str = "Verify",
    severity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "apiKeySecretRef": {"name": secret_name},
        "baseURL": base_url,
        "connectionTest": {"onCreate": on_create},
    }
    if closed_status_id:
        spec["closedStatusId"] = closed_status_id
    if severity:
        spec["incident"] = {"severity": severity}
    return {
        "apiVersion": GV,
        "kind": "IncidentIoDestination",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def rule(name: str, destinations: list[str], ns: str = NS, **spec: Any) -> dict[str, Any]:
    body = {"destinations": [{"name": d} for d in destinations], **spec}
    return {"apiVersion": GV, "kind": "AlertRule", "metadata": {"name": name, "namespace": ns}, "spec": body}


def alert(
    name: str,
    ns: str = NS,
    *,
    state: str = "triggered",
    severity: str = "critical",
    event_type: str = "schema_change",
    environment: str = "production",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "title": f"Column removed from {name}",
        "description": "A column disappeared in the last schema scan.",
        "eventType": event_type,
        "severity": severity,
        "state": state,
        "asset": {
            "id": f"asset-{name}",
            "qualifiedName": f"snowflake.prod_db.sales.{name}",
            "environment": environment,
            "database": "prod_db",
            "schema": "sales",
            "table": name,
        },
    }
    if event_type == "schema_change":
        spec["changes"] = [{"type": "column_removed", "column": "customer_id"}]
    return {
        "apiVersion": GV,
        "kind": "DataAlert",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": spec,
    }
