"""The simulator's own HTTP endpoints under ``/_simulator``: what it holds, for the CLI and other processes."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from incidentio_operator.standins.simulator.server import Simulator


def add_admin_routes(app: web.Application, simulator: Simulator) -> None:
    """Serve the simulator's inspection through its public methods, unauthenticated (it is a local stand-in)."""

    async def incidents(request: web.Request) -> web.Response:
        return web.json_response({"incidents": simulator.incidents})

    async def requests(request: web.Request) -> web.Response:
        return web.json_response({"requests": [asdict(entry) for entry in simulator.requests]})

    app.router.add_get("/_simulator/incidents", incidents)
    app.router.add_get("/_simulator/requests", requests)
