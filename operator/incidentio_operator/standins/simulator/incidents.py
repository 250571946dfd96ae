"""The simulated incidents: create with idempotency keys, show, edit under lifecycle rules, responders' moves."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from incidentio_operator.standins.simulator.config import (
    INVESTIGATING_STATUS_ID,
    SEEDED_AT,
    TERMINAL_CATEGORIES,
    ApiKeyConfig,
    IncidentStatusSeed,
    SeveritySeed,
    SimulatorConfig,
)
from incidentio_operator.standins.simulator.customfields import checked_entries, entries_body
from incidentio_operator.standins.simulator.envelope import ApiError, error, invalid, not_found

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SLACK_TEAM_ID = "T0SIMULATED"


def crockford(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(CROCKFORD[digit])
    return "".join(reversed(chars))


def incident_id(number: int) -> str:
    return "01J" + crockford(number, 23)


def api_key_id(name: str) -> str:
    # Derived from the key's name, never from the secret, so the ID leaks nothing about the key.
    return "01K" + crockford(int.from_bytes(hashlib.sha256(name.encode()).digest()[:14], "big"), 23)


def wall_timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seeded_body(seed: IncidentStatusSeed | SeveritySeed, **fields: Any) -> dict[str, Any]:
    """An incident status or a severity as incident.io lists it (IncidentStatusV1/V2, SeverityV1/V2)."""
    return {
        "id": seed.id,
        "name": seed.name,
        "description": seed.description,
        **fields,
        "rank": seed.rank,
        "created_at": SEEDED_AT,
        "updated_at": SEEDED_AT,
    }


def status_body(status: IncidentStatusSeed) -> dict[str, Any]:
    return seeded_body(status, category=status.category)


def severity_body(severity: SeveritySeed) -> dict[str, Any]:
    return seeded_body(severity)


@dataclass(frozen=True)
class IncidentEdit:
    """One accepted POST /v2/incidents/{id}/actions/edit: what it set, under which key, when (simulator clock).

    ``fields`` is the payload's ``incident`` object as sent (IncidentEditPayloadV2).
    """

    incident_id: str
    fields: dict[str, Any]
    notify_incident_channel: bool
    key_name: str
    at: float


class IncidentBook:
    """Every incident of the organisation; safe to use from the server's loop and from test threads."""

    def __init__(self, config: Callable[[], SimulatorConfig], clock: Callable[[], float]) -> None:
        self._config_of = config
        self._clock = clock
        self._lock = threading.Lock()
        self._by_id: dict[str, dict[str, Any]] = {}
        self._by_number: dict[int, str] = {}
        self._created = 0
        self._idempotency: dict[str, str] = {}
        self._field_values: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._edits: dict[str, list[IncidentEdit]] = {}

    @property
    def _config(self) -> SimulatorConfig:
        return self._config_of()

    # --- inspection ------------------------------------------------------------------------------------

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._by_id.values()))

    def edits(self, incident_id: str) -> list[IncidentEdit]:
        """The incident's accepted edits, oldest first; KeyError for an incident that never existed."""
        with self._lock:
            if incident_id not in self._edits:
                raise KeyError(incident_id)
            return list(self._edits[incident_id])

    # --- a responder in incident.io's dashboard ----------------------------------------------------------

    def set_status(
        self, incident_id: str, *, status_id: str | None = None, category: str | None = None
    ) -> dict[str, Any]:
        """Move the incident to a status, by ID or by category (its lowest-ranked status), as a responder can.

        A responder may move any incident anywhere, so no lifecycle rule applies. KeyError for an unknown
        incident, ValueError for an unknown status or category.
        """
        if (status_id is None) == (category is None):
            raise ValueError("give exactly one of status_id and category")
        candidates = sorted(
            (s for s in self._config.incident_statuses if s.id == status_id or s.category == category),
            key=lambda s: s.rank,
        )
        if not candidates:
            raise ValueError(f"no incident status {status_id or category!r}")
        with self._lock:
            incident = self._find(incident_id, allow_number=True)
            if incident is None:
                raise KeyError(incident_id)
            incident["incident_status"] = status_body(candidates[0])
            incident["updated_at"] = wall_timestamp()
            return copy.deepcopy(incident)

    def delete(self, incident_id: str) -> None:
        """Delete the incident: reads and edits answer 404 from now on, and its idempotency key is free again.

        KeyError for an unknown incident.
        """
        with self._lock:
            incident = self._find(incident_id, allow_number=True)
            if incident is None:
                raise KeyError(incident_id)
            del self._by_id[incident["id"]]
            self._idempotency = {key: found for key, found in self._idempotency.items() if found != incident["id"]}

    def get(self, incident_id: str) -> dict[str, Any]:
        """One incident by ID or by the numeric part of its reference; KeyError when there is none."""
        with self._lock:
            found = self._find(incident_id, allow_number=True)
            if found is None:
                raise KeyError(incident_id)
            return copy.deepcopy(found)

    # --- API operations: each returns the response body, serialised under the lock ---------------------

    def create(self, body: dict[str, Any], key: ApiKeyConfig) -> str:
        with self._lock:
            return json.dumps({"incident": self._create(body, key)})

    def show(self, incident_id: str) -> str:
        with self._lock:
            return json.dumps({"incident": self._existing(incident_id, allow_number=True)})

    def edit(self, incident_id: str, body: dict[str, Any], key: ApiKeyConfig) -> str:
        with self._lock:
            incident = self._edit(self._existing(incident_id, allow_number=False), body, key)
            return json.dumps({"incident": incident})

    # --- internals (called with the lock held) -----------------------------------------------------------

    def _existing(self, incident_id: str, *, allow_number: bool) -> dict[str, Any]:
        incident = self._find(incident_id, allow_number=allow_number)
        if incident is None:
            raise not_found(f"No incident with ID {incident_id!r}")
        return incident

    def _find(self, incident_id: str, *, allow_number: bool) -> dict[str, Any] | None:
        found = self._by_id.get(incident_id)
        if found is None and allow_number and incident_id.isdigit():
            found = self._by_id.get(self._by_number.get(int(incident_id), ""))
        return found

    def _status(self, status_id: str, field: str) -> IncidentStatusSeed:
        for status in self._config.incident_statuses:
            if status.id == status_id:
                return status
        raise invalid(f"No incident status with ID {status_id!r} exists", field)

    def _severity(self, severity_id: str, field: str) -> SeveritySeed:
        for severity in self._config.severities:
            if severity.id == severity_id:
                return severity
        raise invalid(f"No severity with ID {severity_id!r} exists", field)

    def _create(self, body: dict[str, Any], key: ApiKeyConfig) -> dict[str, Any]:
        existing_id = self._idempotency.get(body["idempotency_key"])
        if existing_id is not None:
            return self._by_id[existing_id]
        severity_id = body.get("severity_id")
        if severity_id is None and self._config.severity_required:
            raise ApiError(422, [error("is_required", "A severity is required to open an incident", "severity_id")])
        severity = self._severity(severity_id, "severity_id") if severity_id is not None else None
        status = self._status(body.get("incident_status_id", INVESTIGATING_STATUS_ID), "incident_status_id")
        field_values = checked_entries(self._config.custom_fields, body.get("custom_field_entries", []), "")
        self._created += 1
        number = self._created
        now = wall_timestamp()
        incident: dict[str, Any] = {
            "id": incident_id(number),
            "reference": f"INC-{number}",
            "permalink": f"{self._config.permalink_base}/{number}",
            "name": body.get("name", f"INC-{number}"),
            "mode": body.get("mode", "standard"),
            "visibility": body["visibility"],
            "incident_status": status_body(status),
            "creator": {"api_key": {"id": api_key_id(key.name), "name": key.name}},
            "custom_field_entries": entries_body(self._config.custom_fields, field_values),
            "incident_role_assignments": [],
            "incident_timestamp_values": [],
            "duration_metrics": [],
            "has_debrief": False,
            "slack_team_id": SLACK_TEAM_ID,
            "slack_channel_id": f"C0SIM{number:06d}",
            "slack_channel_name": body.get("slack_channel_name_override", f"inc-{number}"),
            "created_at": now,
            "updated_at": now,
        }
        if "summary" in body:
            incident["summary"] = body["summary"]
        if severity is not None:
            incident["severity"] = severity_body(severity)
        self._by_id[incident["id"]] = incident
        self._by_number[number] = incident["id"]
        self._idempotency[body["idempotency_key"]] = incident["id"]
        self._field_values[incident["id"]] = field_values
        self._edits[incident["id"]] = []
        return incident

    def _edit(self, incident: dict[str, Any], body: dict[str, Any], key: ApiKeyConfig) -> dict[str, Any]:
        changes: dict[str, Any] = body["incident"]
        updates: dict[str, Any] = {}
        if "severity_id" in changes:
            updates["severity"] = severity_body(self._severity(changes["severity_id"], "incident.severity_id"))
        if "incident_status_id" in changes:
            status = self._status(changes["incident_status_id"], "incident.incident_status_id")
            self._check_status_change(incident, status)
            self._check_close_allowed(incident, status, key)
            updates["incident_status"] = status_body(status)
        values = self._field_values[incident["id"]]
        if "custom_field_entries" in changes:
            entries = changes["custom_field_entries"]
            values = {**values, **checked_entries(self._config.custom_fields, entries, "incident.")}
            updates["custom_field_entries"] = entries_body(self._config.custom_fields, values)
        for field in ("name", "summary", "call_url"):
            if field in changes:
                updates[field] = changes[field]
        if "slack_channel_name_override" in changes:
            updates["slack_channel_name"] = changes["slack_channel_name_override"]
        incident.update(updates)
        incident["updated_at"] = wall_timestamp()
        self._field_values[incident["id"]] = values
        self._edits[incident["id"]].append(
            IncidentEdit(
                incident["id"], copy.deepcopy(changes), body["notify_incident_channel"], key.name, self._clock()
            )
        )
        return incident

    def _check_status_change(self, incident: dict[str, Any], status: IncidentStatusSeed) -> None:
        """Modelled, not documented by incident.io: an incident that has ended keeps the status that ended it.

        Setting the status it already has is accepted, so a retried close whose answer was lost succeeds.
        """
        current = incident["incident_status"]
        if current["category"] in TERMINAL_CATEGORIES and status.id != current["id"]:
            message = (
                f"Incident {incident['reference']} is {current['name']} ({current['category']}), which ends an "
                f"incident: its status can no longer be changed to {status.name} ({status.category})"
            )
            raise invalid(message, "incident.incident_status_id")

    def _check_close_allowed(self, incident: dict[str, Any], status: IncidentStatusSeed, key: ApiKeyConfig) -> None:
        role = self._config.close_requires_role
        closing = status.category == "closed" and incident["incident_status"]["category"] != "closed"
        if closing and role is not None and role not in key.roles:
            message = (
                f"Incident {incident['reference']} must go through the post-incident flow before it can "
                f"be closed. To close it directly, use an API key with the '{role}' role, which is "
                "allowed to skip the post-incident flow."
            )
            raise invalid(message, "incident.incident_status_id")
