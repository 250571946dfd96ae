"""The simulated organisation's read-only answers: identity, incident statuses, severities, alert sources."""

from __future__ import annotations

from typing import Any

from incidentio_operator.standins.simulator.alerts import alert_source_body
from incidentio_operator.standins.simulator.config import ApiKeyConfig, SimulatorConfig
from incidentio_operator.standins.simulator.customfields import field_body
from incidentio_operator.standins.simulator.envelope import not_found
from incidentio_operator.standins.simulator.incidents import severity_body, status_body

DASHBOARD_URL = "https://app.incident.io/simulated"


def identity(key: ApiKeyConfig) -> dict[str, Any]:
    """UtilitiesIdentityResultV1: the key's configured name and roles."""
    return {
        "identity": {
            "name": key.name,
            "roles": sorted(key.roles),
            "dashboard_url": DASHBOARD_URL,
            "team_roles": [],
            "teams": [],
        }
    }


def incident_statuses(config: SimulatorConfig) -> dict[str, Any]:
    return {"incident_statuses": [status_body(status) for status in config.incident_statuses]}


def severities(config: SimulatorConfig) -> dict[str, Any]:
    return {"severities": [severity_body(severity) for severity in config.severities]}


def custom_fields(config: SimulatorConfig) -> dict[str, Any]:
    return {"custom_fields": [field_body(seed) for seed in config.custom_fields]}


def alert_source(config: SimulatorConfig, source_id: str, base_url: str) -> dict[str, Any]:
    source = config.alert_sources.get(source_id)
    if source is None:
        raise not_found(f"No alert source with ID {source_id!r}")
    return {"alert_source": alert_source_body(source, base_url)}
