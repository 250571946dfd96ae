"""The simulator's own HTTP endpoints under ``/_simulator``: what it holds, for the CLI and other processes.

They are unauthenticated (a local stand-in) and never show a secret: API keys appear by name, alert
sources without their tokens. A responder's moves are here too, for tests that drive a simulator in
another process:

- ``GET  /_simulator/incidents``, ``GET /_simulator/requests``
- ``GET  /_simulator/incidents/{id}/edits``: the accepted edits, oldest first
- ``POST /_simulator/incidents/{id}/status`` with ``{"incident_status_id": ...}`` or ``{"category": ...}``
- ``DELETE /_simulator/incidents/{id}``
- ``GET  /_simulator/alert_sources``, ``.../{id}/events``, ``.../{id}/alerts``
- ``GET  /_simulator/heartbeats/{id}``: pings, whether it is missed now, its alerts
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from incidentio_operator.standins.simulator.envelope import ApiError, invalid, not_found

if TYPE_CHECKING:
    from incidentio_operator.standins.simulator.server import Simulator

AdminHandler = Callable[["Simulator", web.Request], Awaitable[Any]]


def _answering(simulator: Simulator, handler: AdminHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """JSON from the handler's result (204 for None); KeyError and ValueError in incident.io's envelope."""

    async def answer(request: web.Request) -> web.Response:
        try:
            try:
                result = await handler(simulator, request)
            except KeyError as missing:
                raise not_found(f"Nothing with ID {missing.args[0]!r}") from None
            except ValueError as bad:
                raise invalid(str(bad), "body") from None
        except ApiError as failure:
            return web.json_response(failure.envelope(str(uuid.uuid4())), status=failure.status)
        if result is None:
            return web.Response(status=204)
        return web.json_response(result)

    return answer


async def _incidents(simulator: Simulator, request: web.Request) -> Any:
    return {"incidents": simulator.incidents}


async def _requests(simulator: Simulator, request: web.Request) -> Any:
    return {"requests": [asdict(entry) for entry in simulator.requests]}


async def _edits(simulator: Simulator, request: web.Request) -> Any:
    return {"edits": [asdict(edit) for edit in simulator.incident_edits(request.match_info["id"])]}


async def _set_status(simulator: Simulator, request: web.Request) -> Any:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or len(body.keys() & {"incident_status_id", "category"}) != 1:
        raise ValueError('send {"incident_status_id": "..."} or {"category": "..."}')
    moved = simulator.set_incident_status(
        request.match_info["id"], status_id=body.get("incident_status_id"), category=body.get("category")
    )
    return {"incident": moved}


async def _delete(simulator: Simulator, request: web.Request) -> Any:
    simulator.delete_incident(request.match_info["id"])


async def _alert_sources(simulator: Simulator, request: web.Request) -> Any:
    # Listed field by field: the configuration holds each source's token, which must not leave.
    listed = [
        {
            "id": source.id,
            "name": source.name,
            "source_type": source.source_type,
            "heartbeat": asdict(source.heartbeat) if source.heartbeat is not None else None,
        }
        for source in simulator.config.alert_sources.values()
    ]
    return {"alert_sources": listed}


async def _events(simulator: Simulator, request: web.Request) -> Any:
    return {"events": [asdict(event) for event in simulator.alert_events(request.match_info["id"])]}


async def _alerts(simulator: Simulator, request: web.Request) -> Any:
    return {"alerts": [asdict(alert) for alert in simulator.alerts(request.match_info["id"])]}


async def _heartbeat(simulator: Simulator, request: web.Request) -> Any:
    return {"heartbeat": asdict(simulator.heartbeat(request.match_info["id"]))}


ROUTES: list[tuple[str, str, AdminHandler]] = [
    ("GET", "/_simulator/incidents", _incidents),
    ("GET", "/_simulator/requests", _requests),
    ("GET", "/_simulator/incidents/{id}/edits", _edits),
    ("POST", "/_simulator/incidents/{id}/status", _set_status),
    ("DELETE", "/_simulator/incidents/{id}", _delete),
    ("GET", "/_simulator/alert_sources", _alert_sources),
    ("GET", "/_simulator/alert_sources/{id}/events", _events),
    ("GET", "/_simulator/alert_sources/{id}/alerts", _alerts),
    ("GET", "/_simulator/heartbeats/{id}", _heartbeat),
]


def add_admin_routes(app: web.Application, simulator: Simulator) -> None:
    """Serve the simulator's inspection and a responder's moves through its public methods."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, _answering(simulator, handler))
