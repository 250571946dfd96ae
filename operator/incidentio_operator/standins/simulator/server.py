"""The simulator's HTTP server: routing, auth, rate limits, faults, the request log, and what tests inspect."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from incidentio_operator.standins.simulator.admin import add_admin_routes
from incidentio_operator.standins.simulator.config import ApiKeyConfig, SimulatorConfig
from incidentio_operator.standins.simulator.envelope import (
    ERROR_TYPES,
    TOO_MANY_REQUESTS_MESSAGE,
    ApiError,
    check_body,
    error,
    not_found,
)
from incidentio_operator.standins.simulator.faults import Fault, Faults
from incidentio_operator.standins.simulator.incidents import (
    IncidentBook,
    severity_body,
    status_body,
)
from incidentio_operator.standins.simulator.ratelimit import RateLimiter, retry_after_header, rfc3339
from incidentio_operator.standins.simulator.spec import OPERATIONS, Operation

logger = logging.getLogger(__name__)

DASHBOARD_URL = "https://app.incident.io/simulated"
# How long stop() lets in-flight requests finish; hung and slow requests are released at once on stop.
SHUTDOWN_GRACE_SECONDS = 2.0

# An operation's work once the request is authenticated, authorised and valid: (status, JSON body).
Handler = Callable[[web.Request, Any, ApiKeyConfig], tuple[int, str]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator saw it. ``key_name`` is the key's configured name, never the key."""

    method: str
    path: str
    operation: str
    body: Any
    status: int
    key_name: str | None
    at: float


class Simulator:
    """A local incident.io: start it, point a client at ``url``, inspect ``incidents`` and ``requests``."""

    def __init__(
        self, config: SimulatorConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self.faults = Faults()
        self._clock = clock
        self._limiter = RateLimiter(clock)
        self._incidents = IncidentBook(self.config)
        # Handlers run on the server's loop while tests read from other threads.
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._stopping: asyncio.Event | None = None
        self._handlers: dict[str, Handler] = {
            "identity": self._identity,
            "list_incident_statuses": self._list_incident_statuses,
            "list_severities": self._list_severities,
            "create_incident": lambda request, body, key: (200, self._incidents.create(body, key)),
            "show_incident": lambda request, body, key: (200, self._incidents.show(request.match_info["id"])),
            "edit_incident": lambda request, body, key: (
                200,
                self._incidents.edit(request.match_info["id"], body, key),
            ),
        }

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping = asyncio.Event()
        app = web.Application()
        for operation in OPERATIONS.values():
            app.router.add_route(operation.method, operation.path, self._handler_for(operation))
        add_admin_routes(app, self)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        self._runner = runner
        self._url = f"http://{bound_host}:{bound_port}"

    async def stop(self) -> None:
        if self._runner is None:
            return
        if self._stopping is not None:
            self._stopping.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the simulator has not been started")
        return self._url

    # --- configuration and inspection ------------------------------------------------------------------

    def set_key(self, key: str, *, name: str, roles: Iterable[str]) -> None:
        with self._lock:
            self.config.keys[key] = ApiKeyConfig(name=name, roles=frozenset(roles))

    def revoke_key(self, key: str) -> None:
        with self._lock:
            self.config.keys.pop(key, None)

    @property
    def incidents(self) -> list[dict[str, Any]]:
        return self._incidents.all()

    def incident(self, incident_id: str) -> dict[str, Any]:
        """One incident by ID or by the numeric part of its reference; KeyError when there is none."""
        return self._incidents.get(incident_id)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- request pipeline ------------------------------------------------------------------------------

    def _handler_for(self, operation: Operation) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await self._handle(operation, request)

        return handle

    async def _handle(self, operation: Operation, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        headers = {"X-Request-Id": request_id}
        body: Any = None
        malformed = False
        if operation.request_schema is not None:
            raw = await request.text()
            try:
                body = json.loads(raw)
            except ValueError:
                body, malformed = raw, True
        key: ApiKeyConfig | None = None
        try:
            key = self._authenticate(request)
            headers.update(self._rate_limit(key))
            self._authorize(operation, key)
            fault = self.faults.take(operation.name)
            if fault is not None:
                await self._before_operation(fault, key)
            if malformed:
                raise ApiError(400, [error("invalid_json", "The request body is not valid JSON")])
            if operation.request_schema is not None:
                check_body(operation.request_schema, body)
            status, text = self._handlers[operation.name](request, body, key)
            if fault is not None and fault.kind == "lose_response":
                raise ApiError(fault.status, [error("bad_gateway", "The response was lost on its way back")])
        except ApiError as failure:
            status, text = failure.status, json.dumps(failure.envelope(request_id))
            headers.update(failure.headers)
        self._record(request, operation.name, body, status, key.name if key else None)
        return web.Response(status=status, text=text, content_type="application/json", headers=headers)

    def _authenticate(self, request: web.Request) -> ApiKeyConfig:
        header = request.headers.get("Authorization", "")
        if not header.strip():
            raise ApiError(
                401,
                [error("missing_authorization_material", "No authorization material provided in request")],
            )
        scheme, _, token = header.strip().partition(" ")
        key = self.config.keys.get(token.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise ApiError(
                401,
                [
                    error(
                        "invalid_authorization_material",
                        "The API key provided is not valid, or has been revoked",
                    )
                ],
            )
        return key

    def _rate_limit(self, key: ApiKeyConfig) -> dict[str, str]:
        config = self.config
        if config.rate_limit_per_minute is None:
            return {}
        decision = self._limiter.take(key.name, config.rate_limit_per_minute, config.refill_per_second)
        wall_now = time.time()
        headers = decision.headers(wall_now)
        if decision.allowed:
            return headers
        headers["Retry-After"] = retry_after_header(
            decision.seconds_until_next, config.retry_after_form, wall_now
        )
        raise ApiError(
            429,
            [error("too_many_requests", TOO_MANY_REQUESTS_MESSAGE)],
            headers=headers,
            extra={
                "rate_limit": {
                    "name": key.name,
                    "limit": decision.limit,
                    "remaining": decision.remaining,
                    "retry_after": rfc3339(wall_now + decision.seconds_until_next),
                }
            },
        )

    def _authorize(self, operation: Operation, key: ApiKeyConfig) -> None:
        role = operation.required_role
        if role is not None and role not in key.roles:
            raise ApiError(
                403,
                [
                    error(
                        "missing_role",
                        f"This API key is missing the '{role}' role, which {operation.name} requires",
                    )
                ],
            )

    async def _before_operation(self, fault: Fault, key: ApiKeyConfig) -> None:
        if fault.kind in ("hang", "slow"):
            await self._wait_unless_stopping(fault.seconds)
        if fault.kind == "hang":
            raise ApiError(fault.status, [error("gateway_timeout", "The request timed out")])
        if fault.kind == "fail":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            extra: dict[str, Any] = {}
            if fault.status == 429:
                wait = int(fault.retry_after) if fault.retry_after and fault.retry_after.isdigit() else 1
                extra["rate_limit"] = {
                    "name": key.name,
                    "limit": self.config.rate_limit_per_minute or 0,
                    "remaining": 0,
                    "retry_after": rfc3339(time.time() + wait),
                }
            code = ERROR_TYPES.get(fault.status, "internal_error")
            raise ApiError(
                fault.status,
                [error(code, f"Injected failure (HTTP {fault.status})")],
                headers=headers,
                extra=extra,
            )

    async def _wait_unless_stopping(self, seconds: float) -> None:
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    def _record(
        self, request: web.Request, operation: str, body: Any, status: int, key_name: str | None
    ) -> None:
        entry = RecordedRequest(
            request.method, request.path, operation, body, status, key_name, self._clock()
        )
        with self._lock:
            self._requests.append(entry)
        logger.debug("%s %s -> %d (%s, key %s)", entry.method, entry.path, status, operation, key_name)

    # --- the organisation's settings -------------------------------------------------------------------

    def _identity(self, request: web.Request, body: Any, key: ApiKeyConfig) -> tuple[int, str]:
        identity = {
            "name": key.name,
            "roles": sorted(key.roles),
            "dashboard_url": DASHBOARD_URL,
            "team_roles": [],
            "teams": [],
        }
        return 200, json.dumps({"identity": identity})

    def _list_incident_statuses(self, request: web.Request, body: Any, key: ApiKeyConfig) -> tuple[int, str]:
        statuses = [status_body(status) for status in self.config.incident_statuses]
        return 200, json.dumps({"incident_statuses": statuses})

    def _list_severities(self, request: web.Request, body: Any, key: ApiKeyConfig) -> tuple[int, str]:
        return 200, json.dumps({"severities": [severity_body(s) for s in self.config.severities]})

    async def _unknown_route(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        failure = not_found(f"No route for {request.method} {request.path}")
        return web.json_response(
            failure.envelope(request_id), status=404, headers={"X-Request-Id": request_id}
        )
