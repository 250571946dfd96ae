"""Typed requests and responses for the incident.io calls the product makes, parsed tolerantly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from incidentio_operator.incidentio.customfields import CustomFieldEntry, CustomFieldEntryPayload
from incidentio_operator.incidentio.parsing import (
    member_of,
    object_of,
    optional_int,
    optional_str,
    required_str,
)

# The status categories that end an incident, of the eight IncidentStatusV2.category lists in the spec
# (triage, declined, merged, canceled, live, learning, closed, paused): no work follows these.
TERMINAL_STATUS_CATEGORIES = frozenset({"closed", "declined", "merged", "canceled"})


@dataclass(frozen=True)
class Identity:
    """Who an API key is (GET /v1/identity): its name and roles."""

    name: str
    roles: tuple[str, ...]
    dashboard_url: str | None

    @classmethod
    def from_json(cls, data: object) -> Identity:
        identity = member_of(data, "identity")
        roles = identity.get("roles")
        return cls(
            name=required_str(identity, "name", "identity"),
            roles=tuple(role for role in roles if isinstance(role, str)) if isinstance(roles, list) else (),
            dashboard_url=optional_str(identity, "dashboard_url"),
        )


def _ranked(data: object, where: str, *, name_required: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The object, and the fields incident statuses and severities share: id, name, rank, description."""
    body = object_of(data, where)
    name = required_str(body, "name", where) if name_required else optional_str(body, "name") or ""
    common = {
        "id": required_str(body, "id", where),
        "name": name,
        "rank": optional_int(body, "rank") or 0,
        "description": optional_str(body, "description"),
    }
    return body, common


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

    @property
    def is_terminal(self) -> bool:
        """Whether the incident has ended: closed, declined, merged or canceled."""
        return self.category in TERMINAL_STATUS_CATEGORIES

    @classmethod
    def from_json(cls, data: object) -> IncidentStatus:
        status, common = _ranked(data, "incident_status", name_required=False)
        return cls(category=required_str(status, "category", "incident_status"), **common)


@dataclass(frozen=True)
class Severity:
    """One severity; the product resolves configured severity names to these ids."""

    id: str
    name: str
    rank: int
    description: str | None

    @classmethod
    def from_json(cls, data: object) -> Severity:
        return cls(**_ranked(data, "severity", name_required=True)[1])


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
    custom_field_entries: tuple[CustomFieldEntry, ...] = ()

    @classmethod
    def from_json(cls, data: object) -> Incident:
        """Parse a response holding one incident: `{"incident": {...}}`."""
        incident = member_of(data, "incident")
        severity = incident.get("severity")
        entries = incident.get("custom_field_entries")
        return cls(
            id=required_str(incident, "id", "incident"),
            reference=required_str(incident, "reference", "incident"),
            name=optional_str(incident, "name") or "",
            permalink=optional_str(incident, "permalink"),
            mode=optional_str(incident, "mode") or "",
            visibility=optional_str(incident, "visibility") or "",
            incident_status=IncidentStatus.from_json(incident.get("incident_status")),
            severity=Severity.from_json(severity) if severity is not None else None,
            summary=optional_str(incident, "summary"),
            created_at=optional_str(incident, "created_at"),
            custom_field_entries=tuple(
                CustomFieldEntry.from_json(entry) for entry in (entries if isinstance(entries, list) else ())
            ),
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
    custom_field_entries: tuple[CustomFieldEntryPayload, ...] = ()

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
        if self.custom_field_entries:
            body["custom_field_entries"] = [entry.to_json() for entry in self.custom_field_entries]
        return body


@dataclass(frozen=True)
class EditIncidentRequest:
    """POST /v2/incidents/{id}/actions/edit (IncidentsEditPayloadV2); only the fields set here change.

    Fields left None are left out of the JSON, so an edit carries only what changed.
    ``custom_field_entries`` names the fields to change (an entry without values unsets its field);
    fields it does not name keep their values. ``notify_incident_channel`` is always sent: the spec
    requires it.
    """

    incident_status_id: str | None = None
    notify_incident_channel: bool = False
    severity_id: str | None = None
    summary: str | None = None
    name: str | None = None
    custom_field_entries: tuple[CustomFieldEntryPayload, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "incident_status_id": self.incident_status_id,
            "severity_id": self.severity_id,
            "summary": self.summary,
            "name": self.name,
        }
        if self.custom_field_entries is not None:
            changes["custom_field_entries"] = [entry.to_json() for entry in self.custom_field_entries]
        # Both keys are required by IncidentsEditPayloadV2, even when nothing in the incident changes.
        return {
            "incident": {key: value for key, value in changes.items() if value is not None},
            "notify_incident_channel": self.notify_incident_channel,
        }
