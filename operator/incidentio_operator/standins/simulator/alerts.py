"""The simulated alert sources: alert events deduplicated into alerts, and heartbeats that fire when pings stop."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, replace
from typing import Any

from incidentio_operator.standins.simulator.config import AlertSourceConfig, HeartbeatSettings
from incidentio_operator.standins.simulator.envelope import ApiError, error
from incidentio_operator.standins.simulator.incidents import crockford


@dataclass(frozen=True)
class ReceivedAlertEvent:
    """One accepted alert event (AlertEventsCreateHTTPPayloadV2) and when it came, on the simulator's clock."""

    source_id: str
    status: str
    title: str
    deduplication_key: str
    description: str | None
    metadata: dict[str, Any] | None
    source_url: str | None
    at: float


@dataclass(frozen=True)
class SimulatedAlert:
    """What incident.io makes of the events of one deduplication key while it fires: one alert.

    ``event_count`` counts every event that reached this alert: the firing one that opened it, the
    firing ones that updated it, and the resolved one that ended it.
    """

    id: str
    source_id: str
    deduplication_key: str
    status: str
    title: str
    description: str | None
    metadata: dict[str, Any] | None
    source_url: str | None
    event_count: int
    created_at: float
    updated_at: float
    resolved_at: float | None


@dataclass(frozen=True)
class HeartbeatAlert:
    """A missed heartbeat: fired when the window after the last ping ran out, resolved by the next ping."""

    fired_at: float
    resolved_at: float | None


@dataclass(frozen=True)
class HeartbeatState:
    """A heartbeat source now: its pings (clock times, oldest first), whether it is missed, its alerts.

    Before its first ping a heartbeat is not missed: the simulator counts from the first ping, since
    it cannot know when the pinging job was meant to start (modelled; incident.io does not say).
    """

    source_id: str
    settings: HeartbeatSettings
    pings: tuple[float, ...]
    missed: bool
    alerts: tuple[HeartbeatAlert, ...]


def heartbeat_state(source: AlertSourceConfig, pings: tuple[float, ...], now: float) -> HeartbeatState:
    """Derived from the pings alone, so no timer runs: a gap longer than the window is one alert."""
    assert source.heartbeat is not None
    window = source.heartbeat.window_seconds
    alerts = [
        HeartbeatAlert(earlier + window, later)
        for earlier, later in itertools.pairwise(pings)
        if later - earlier > window
    ]
    missed = bool(pings) and now - pings[-1] > window
    if missed:
        alerts.append(HeartbeatAlert(pings[-1] + window, None))
    return HeartbeatState(source.id, source.heartbeat, pings, missed, tuple(alerts))


class AlertBook:
    """Every alert event, alert and heartbeat ping the simulated organisation received, by alert source."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[ReceivedAlertEvent]] = {}
        self._alerts: dict[str, list[SimulatedAlert]] = {}
        self._pings: dict[str, list[float]] = {}
        self._count = 0

    def receive(self, source: AlertSourceConfig, body: dict[str, Any], now: float) -> dict[str, Any]:
        """Take one valid event; the response body (AlertEventsCreateHTTPResultV2).

        Per (source, deduplication key) at most one alert fires: a firing event opens one or updates
        the one firing, a resolved event resolves it, and a firing event after that opens a new alert.
        A resolved event for a key with nothing firing changes no alert. The deduplication key is
        required: incident.io requires it "for newly created HTTP sources" (the payload's description).
        """
        key = body.get("deduplication_key")
        if not key:
            raise ApiError(422, [error("is_required", "deduplication_key is required", "deduplication_key")])
        event = ReceivedAlertEvent(
            source.id,
            body["status"],
            body["title"],
            key,
            body.get("description"),
            body.get("metadata"),
            body.get("source_url"),
            now,
        )
        with self._lock:
            self._events.setdefault(source.id, []).append(event)
            self._apply(event)
        return {"status": "success", "message": "Event accepted for processing", "deduplication_key": key}

    def _apply(self, event: ReceivedAlertEvent) -> None:
        alerts = self._alerts.setdefault(event.source_id, [])
        firing = [alert.status == "firing" and alert.deduplication_key == event.deduplication_key for alert in alerts]
        index = firing.index(True) if any(firing) else None
        if index is None:
            if event.status == "firing":
                self._count += 1
                alerts.append(
                    SimulatedAlert(
                        "01A" + crockford(self._count, 23),
                        event.source_id,
                        event.deduplication_key,
                        "firing",
                        event.title,
                        event.description,
                        event.metadata,
                        event.source_url,
                        1,
                        event.at,
                        event.at,
                        None,
                    )
                )
            return
        alert = alerts[index]
        # An event updates the title, and whichever of the optional fields it carries.
        alerts[index] = replace(
            alert,
            status=event.status,
            title=event.title,
            description=event.description if event.description is not None else alert.description,
            metadata=event.metadata if event.metadata is not None else alert.metadata,
            source_url=event.source_url if event.source_url is not None else alert.source_url,
            event_count=alert.event_count + 1,
            updated_at=event.at,
            resolved_at=event.at if event.status == "resolved" else None,
        )

    def ping(self, source: AlertSourceConfig, now: float) -> None:
        with self._lock:
            self._pings.setdefault(source.id, []).append(now)

    def events(self, source_id: str) -> list[ReceivedAlertEvent]:
        with self._lock:
            return list(self._events.get(source_id, ()))

    def alerts(self, source_id: str) -> list[SimulatedAlert]:
        with self._lock:
            return list(self._alerts.get(source_id, ()))

    def heartbeat(self, source: AlertSourceConfig, now: float) -> HeartbeatState:
        with self._lock:
            pings = tuple(self._pings.get(source.id, ()))
        return heartbeat_state(source, pings, now)


def alert_source_body(source: AlertSourceConfig, base_url: str) -> dict[str, Any]:
    """AlertSourceV2, as GET /v2/alert_sources/{id} returns it.

    incident.io includes the source's ``secret_token`` (the spec's example shows it); the simulator does
    the same, so a client is tested against a response that carries a secret it must not keep or log.
    """
    body: dict[str, Any] = {
        "id": source.id,
        "name": source.name,
        "source_type": source.source_type,
        "secret_token": source.token,
        # The least AlertTemplateV2 allows: title and description bound to the event's own fields.
        "template": {
            "title": {"label": "Title", "reference": "alert.title"},
            "description": {"label": "Description", "reference": "alert.description"},
            "attributes": [],
            "expressions": [],
            "is_private": False,
        },
    }
    if source.source_type == "http":
        body["alert_events_url"] = f"{base_url}/v2/alert_events/http/{source.id}"
    if source.heartbeat is not None:
        body["heartbeat_options"] = {
            "interval_seconds": source.heartbeat.interval_seconds,
            "grace_period_seconds": source.heartbeat.grace_period_seconds,
            "failure_threshold": source.heartbeat.failure_threshold,
            "ping_url": f"{base_url}/v2/heartbeat/{source.id}/ping",
        }
    return body
