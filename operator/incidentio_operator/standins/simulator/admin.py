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

AdminHandler = Callable[[web.Request], Awaitable[Any]]


def _answering(handler: AdminHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """JSON from the handler's result (204 for None); KeyError and ValueError in incident.io's envelope."""

    async def answer(request: web.Request) -> web.Response:
        try:
            try:
                result = await handler(request)
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


def add_admin_routes(app: web.Application, simulator: Simulator) -> None:
    """Serve the simulator's inspection and a responder's moves through its public methods."""

    async def incidents(request: web.Request) -> Any:
        return {"incidents": simulator.incidents}

    async def requests(request: web.Request) -> Any:
        return {"requests": [asdict(entry) for entry in simulator.requests]}

    async def edits(request: web.Request) -> Any:
        return {"edits": [asdict(edit) for edit in simulator.incident_edits(request.match_info["id"])]}

    async def set_status(request: web.Request) -> Any:
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

    async def delete(request: web.Request) -> Any:
        simulator.delete_incident(request.match_info["id"])

    async def alert_sources(request: web.Request) -> Any:
        sources = simulator.config.alert_sources.values()
        listed = [
            {
                "id": source.id,
                "name": source.name,
                "source_type": source.source_type,
                "heartbeat": asdict(source.heartbeat) if source.heartbeat is not None else None,
            }
            for source in sources
        ]
        return {"alert_sources": listed}

    async def events(request: web.Request) -> Any:
        return {"events": [asdict(event) for event in simulator.alert_events(request.match_info["id"])]}

    async def alerts(request: web.Request) -> Any:
        return {"alerts": [asdict(alert) for alert in simulator.alerts(request.match_info["id"])]}

    async def heartbeat(request: web.Request) -> Any:
        return {"heartbeat": asdict(simulator.heartbeat(request.match_info["id"]))}

    routes: list[tuple[str, str, AdminHandler]] = [
        ("GET", "/_simulator/incidents", incidents),
        ("GET", "/_simulator/requests", requests),
        ("GET", "/_simulator/incidents/{id}/edits", edits),
        ("POST", "/_simulator/incidents/{id}/status", set_status),
        ("DELETE", "/_simulator/incidents/{id}", delete),
        ("GET", "/_simulator/alert_sources", alert_sources),
        ("GET", "/_simulator/alert_sources/{id}/events", events),
        ("GET", "/_simulator/alert_sources/{id}/alerts", alerts),
        ("GET", "/_simulator/heartbeats/{id}", heartbeat),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _answering(handler))
