"""incident.io alert sources: the source as shown, alert events sent to an HTTP source, and their answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from incidentio_operator.incidentio.parsing import (
    member_of,
    object_of,
    optional_int,
    optional_str,
    required_str,
)

AlertEventStatus = Literal["firing", "resolved"]


@dataclass(frozen=True)
class AlertEvent:
    """POST /v2/alert_events/http/{alert_source_config_id} (AlertEventsCreateHTTPPayloadV2).

    Per alert source and ``deduplication_key`` incident.io keeps one alert: ``firing`` opens or updates
    it, ``resolved`` resolves it. ``metadata`` is any JSON object; ``description`` supports markdown.
    """

    status: AlertEventStatus
    title: str
    deduplication_key: str
    description: str | None = None
    metadata: Mapping[str, Any] | None = field(default=None, hash=False)
    source_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "title": self.title, "deduplication_key": self.deduplication_key}
        optional: dict[str, Any] = {
            "description": self.description,
            "metadata": dict(self.metadata) if self.metadata is not None else None,
            "source_url": self.source_url,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body


@dataclass(frozen=True)
class AlertEventAccepted:
    """incident.io's 202 answer to an alert event (AlertEventsCreateHTTPResultV2)."""

    status: str
    message: str
    deduplication_key: str

    @classmethod
    def from_json(cls, data: object) -> AlertEventAccepted:
        body = object_of(data, "response")
        return cls(
            status=required_str(body, "status", "response"),
            message=optional_str(body, "message") or "",
            deduplication_key=required_str(body, "deduplication_key", "response"),
        )


@dataclass(frozen=True)
class AlertSourceHeartbeat:
    """A heartbeat source's options (AlertSourceHeartbeatOptionsV2), in seconds."""

    interval_seconds: int
    grace_period_seconds: int
    failure_threshold: int


@dataclass(frozen=True)
class AlertSource:
    """GET /v2/alert_sources/{id} (AlertSourceV2): the parts the product checks.

    ``source_type`` stays text (the spec's enum grows); an HTTP source, the one alert events go to, is
    ``"http"``. The response also carries the source's ``secret_token``, which is deliberately not kept.
    """

    id: str
    name: str
    source_type: str
    heartbeat: AlertSourceHeartbeat | None

    @property
    def is_http(self) -> bool:
        return self.source_type == "http"

    @classmethod
    def from_json(cls, data: object) -> AlertSource:
        """Parse a response holding one alert source: ``{"alert_source": {...}}``."""
        source = member_of(data, "alert_source")
        options = source.get("heartbeat_options")
        heartbeat = None
        if isinstance(options, dict):
            heartbeat = AlertSourceHeartbeat(
                interval_seconds=optional_int(options, "interval_seconds") or 0,
                grace_period_seconds=optional_int(options, "grace_period_seconds") or 0,
                failure_threshold=optional_int(options, "failure_threshold") or 1,
            )
        return cls(
            id=required_str(source, "id", "alert_source"),
            name=optional_str(source, "name") or "",
            source_type=required_str(source, "source_type", "alert_source"),
            heartbeat=heartbeat,
        )
