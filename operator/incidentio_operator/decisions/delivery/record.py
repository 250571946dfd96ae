"""What a delivery records of its open incident: fingerprints of what incident.io holds, and the edit waiting to go.

The status keeps a short digest per field (name, summary, severity, each custom field by ID), never the
values themselves: enough to tell whether an alert's change alters anything incident.io holds, at a few
dozen bytes per delivery.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incidentio_operator.api import ObjectRef
from incidentio_operator.incidentio.models import EditIncidentRequest

# Hex digits of a SHA-256 kept per field: a change going unnoticed would take a 1 in 2**40 collision.
DIGEST_LENGTH = 10


def digest(value: Any) -> str:
    """A short, stable digest of a JSON-like value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]


@dataclass(frozen=True)
class UpdateTiming:
    """How edits are coalesced: sent once the alert has been quiet for ``quiet`` seconds, at most ``longest``
    seconds after the first change waiting."""

    quiet: float = 3.0
    longest: float = 30.0


@dataclass(frozen=True)
class SentRecord:
    """What incident.io holds of an open incident (``fields``: digests by field), and the generation it reflects."""

    generation: int
    fields: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"generation": self.generation, "fields": dict(self.fields)}

    @classmethod
    def from_json(cls, data: Any) -> SentRecord | None:
        if not isinstance(data, Mapping):
            return None
        fields = data.get("fields")
        return cls(
            generation=int(data.get("generation") or 0),
            fields={str(k): str(v) for k, v in fields.items()} if isinstance(fields, Mapping) else {},
        )


@dataclass(frozen=True)
class PendingUpdate:
    """An edit waiting for the alert to settle: the digest of what it would send, since when, and when it goes.

    ``failures`` counts retryable failures of this edit; ``refused`` marks one incident.io refused for good,
    not sent again until the alert (or the destination) changes what it would send.
    """

    digest: str
    since: str
    due_at: str = ""
    failures: int = 0
    refused: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"digest": self.digest, "since": self.since}
        optional = {"dueAt": self.due_at, "failures": self.failures, "refused": self.refused}
        data.update({key: value for key, value in optional.items() if value})
        return data

    @classmethod
    def from_json(cls, data: Any) -> PendingUpdate | None:
        if not isinstance(data, Mapping) or not data.get("digest"):
            return None
        return cls(
            digest=str(data["digest"]),
            since=str(data.get("since") or ""),
            due_at=str(data.get("dueAt") or ""),
            failures=int(data.get("failures") or 0),
            refused=bool(data.get("refused")),
        )


@dataclass(frozen=True)
class UpdateIncident:
    """Edit an open incident with only what changed; ``fields`` are the digests incident.io holds afterwards."""

    destination: ObjectRef
    label: str
    epoch: int
    incident_id: str
    request: EditIncidentRequest
    fields: Mapping[str, str]
    generation: int
    changed: tuple[str, ...]
