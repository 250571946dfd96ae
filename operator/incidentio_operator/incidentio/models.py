"""Typed requests and responses for the incident.io calls the product makes, parsed tolerantly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ResponseShapeError(ValueError):
    """A response lacks something the product needs, or has it in the wrong type."""


def _object(data: object, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ResponseShapeError(f"{where} is not an object")
    return data


def _required_str(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ResponseShapeError(f"{where}.{key} is missing or not a string")
    return value


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _rank(data: dict[str, Any]) -> int:
    value = data.get("rank")
    # bool is an int subclass; a boolean rank is nonsense and should not sort as 0 or 1.
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise ResponseShapeError(f"{where}.{key} is missing or not a list")
    return value


@dataclass(frozen=True)
class Identity:
    """Who an API key is (GET /v1/identity): its name and roles."""

    name: str
    roles: tuple[str, ...]
    dashboard_url: str | None

    @classmethod
    def from_json(cls, data: object) -> Identity:
        body = _object(data, "response")
        identity = _object(body.get("identity"), "identity")
        roles = identity.get("roles")
        return cls(
            name=_required_str(identity, "name", "identity"),
            roles=tuple(role for role in roles if isinstance(role, str)) if isinstance(roles, list) else (),
            dashboard_url=_optional_str(identity, "dashboard_url"),
        )


@dataclass(frozen=True)
class IncidentStatus:
    """One incident status; `category` is kept as text because incident.io adds categories over time."""

    id: str
    name: str
    category: str
    rank: int
    description: str | None

    @property
    def is_closed(self) -> bool:
        return self.category == "closed"

    @classmethod
    def from_json(cls, data: object) -> IncidentStatus:
        status = _object(data, "incident_status")
        return cls(
            id=_required_str(status, "id", "incident_status"),
            name=_optional_str(status, "name") or "",
            category=_required_str(status, "category", "incident_status"),
            rank=_rank(status),
            description=_optional_str(status, "description"),
        )

    @classmethod
    def list_from_json(cls, data: object) -> list[IncidentStatus]:
        body = _object(data, "response")
        return [cls.from_json(item) for item in _list(body, "incident_statuses", "response")]


@dataclass(frozen=True)
class Severity:
    """One severity; the product resolves configured severity names to these ids."""

    id: str
    name: str
    rank: int
    description: str | None

    @classmethod
    def from_json(cls, data: object) -> Severity:
        severity = _object(data, "severity")
        return cls(
            id=_required_str(severity, "id", "severity"),
            name=_required_str(severity, "name", "severity"),
            rank=_rank(severity),
            description=_optional_str(severity, "description"),
        )

    @classmethod
    def list_from_json(cls, data: object) -> list[Severity]:
        body = _object(data, "response")
        return [cls.from_json(item) for item in _list(body, "severities", "response")]


@dataclass(frozen=True)
class Incident:
    """The parts of an incident (IncidentV2) the product uses; mode and visibility stay text like enums."""

    id: str
    reference: str
    name: str
    permalink: str | None
    mode: str
    visibility: str
    incident_status: IncidentStatus
    severity: Severity | None
    summary: str | None
    created_at: str | None

    @classmethod
    def from_json(cls, data: object) -> Incident:
        """Parse a response holding one incident: `{"incident": {...}}`."""
        body = _object(data, "response")
        incident = _object(body.get("incident"), "incident")
        severity = incident.get("severity")
        return cls(
            id=_required_str(incident, "id", "incident"),
            reference=_required_str(incident, "reference", "incident"),
            name=_optional_str(incident, "name") or "",
            permalink=_optional_str(incident, "permalink"),
            mode=_optional_str(incident, "mode") or "",
            visibility=_optional_str(incident, "visibility") or "",
            incident_status=IncidentStatus.from_json(incident.get("incident_status")),
            severity=Severity.from_json(severity) if severity is not None else None,
            summary=_optional_str(incident, "summary"),
            created_at=_optional_str(incident, "created_at"),
        )


@dataclass(frozen=True)
class CreateIncidentRequest:
    """POST /v2/incidents; incident.io returns the existing incident when the idempotency key repeats."""

    idempotency_key: str
    name: str
    visibility: str = "public"
    mode: str = "standard"
    summary: str | None = None
    severity_id: str | None = None
    incident_type_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "idempotency_key": self.idempotency_key,
            "name": self.name,
            "visibility": self.visibility,
            "mode": self.mode,
        }
        optional = {
            "summary": self.summary,
            "severity_id": self.severity_id,
            "incident_type_id": self.incident_type_id,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body


@dataclass(frozen=True)
class EditIncidentRequest:
    """POST /v2/incidents/{id}/actions/edit; only the fields set here change."""

    incident_status_id: str | None = None
    notify_incident_channel: bool = False
    severity_id: str | None = None
    summary: str | None = None
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        changes = {
            "incident_status_id": self.incident_status_id,
            "severity_id": self.severity_id,
            "summary": self.summary,
            "name": self.name,
        }
        # Both keys are required by IncidentsEditPayloadV2, even when nothing in the incident changes.
        return {
            "incident": {key: value for key, value in changes.items() if value is not None},
            "notify_incident_channel": self.notify_incident_channel,
        }
