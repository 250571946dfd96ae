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

from incidentio_operator.standins.simulator import organisation
from incidentio_operator.standins.simulator.admin import add_admin_routes
from incidentio_operator.standins.simulator.alerts import AlertBook, HeartbeatState, ReceivedAlertEvent, SimulatedAlert
from incidentio_operator.standins.simulator.auth import authenticate_key, authenticate_source, authorize
from incidentio_operator.standins.simulator.config import AlertSourceConfig, ApiKeyConfig, SimulatorConfig
from incidentio_operator.standins.simulator.customfields import options_page
from incidentio_operator.standins.simulator.envelope import (
    ERROR_TYPES,
    TOO_MANY_REQUESTS_MESSAGE,
    ApiError,
    check_body,
    error,
    not_found,
)
from incidentio_operator.standins.simulator.faults import Fault, Faults
from incidentio_operator.standins.simulator.incidents import IncidentBook, IncidentEdit
from incidentio_operator.standins.simulator.ratelimit import RateLimiter, retry_after_header, rfc3339
from incidentio_operator.standins.simulator.spec import OPERATIONS, Operation

logger = logging.getLogger(__name__)

# How long stop() lets in-flight requests finish; hung and slow requests are released at once on stop.
SHUTDOWN_GRACE_SECONDS = 2.0

Caller = ApiKeyConfig | AlertSourceConfig


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator saw it, by names only: ``key_name`` is the API key's configured name
    and ``alert_source_id`` the alert source a token-authenticated request was for, never a secret.
    """

    method: str
    path: str
    operation: str
    body: Any
    status: int
    key_name: str | None
    at: float
    alert_source_id: str | None = None


class Simulator:
    """A local incident.io: start it, point a client at ``url``, inspect ``incidents`` and ``requests``.

    Inspection (safe from any thread): ``incidents``, ``incident(id)``, ``incident_edits(id)``,
    ``requests``, ``alert_events(source_id)``, ``alerts(source_id)``, ``heartbeat(source_id)``.
    A responder's moves: ``set_incident_status(id, status_id=|category=)``, ``delete_incident(id)``.
    """

    def __init__(self, config: SimulatorConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self.faults = Faults()
        self._clock = clock
        self._limiter = RateLimiter(clock)
        self._source_limiter = RateLimiter(clock)
        # The books read the configuration at each call, as the handlers do: tests change it while serving.
        self._incidents = IncidentBook(lambda: self.config, clock)
        self._alerts = AlertBook()
        # Handlers run on the server's loop while tests read from other threads.
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._stopping: asyncio.Event | None = None

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

    def set_alert_source(self, source: AlertSourceConfig) -> None:
        """Add an alert source, or replace the one with its ID (a token rotation, say)."""
        with self._lock:
            self.config.alert_sources[source.id] = source

    def remove_alert_source(self, source_id: str) -> None:
        with self._lock:
            self.config.alert_sources.pop(source_id, None)

    @property
    def incidents(self) -> list[dict[str, Any]]:
        return self._incidents.all()

    def incident(self, incident_id: str) -> dict[str, Any]:
        """One incident by ID or by the numeric part of its reference; KeyError when there is none."""
        return self._incidents.get(incident_id)

    def incident_edits(self, incident_id: str) -> list[IncidentEdit]:
        """The edits incident.io accepted for this incident, oldest first; KeyError if it never existed."""
        return self._incidents.edits(incident_id)

    def set_incident_status(
        self, incident_id: str, *, status_id: str | None = None, category: str | None = None
    ) -> dict[str, Any]:
        """A responder moves the incident to a status (by ID, or by category); returns the incident.

        KeyError for an unknown incident, ValueError for an unknown status or category.
        """
        return self._incidents.set_status(incident_id, status_id=status_id, category=category)

    def delete_incident(self, incident_id: str) -> None:
        """A responder deletes the incident: GET and edit answer 404 from now on. KeyError if unknown."""
        self._incidents.delete(incident_id)

    def alert_events(self, source_id: str) -> list[ReceivedAlertEvent]:
        """The alert events the source accepted, in the order they came."""
        return self._alerts.events(source_id)

    def alerts(self, source_id: str) -> list[SimulatedAlert]:
        """The source's alerts, oldest first: at most one firing per deduplication key."""
        return self._alerts.alerts(source_id)

    def heartbeat(self, source_id: str) -> HeartbeatState:
        """A heartbeat source's pings and whether it is missed now; KeyError if there is no such heartbeat."""
        source = self.config.alert_sources.get(source_id)
        if source is None or source.heartbeat is None:
            raise KeyError(source_id)
        return self._alerts.heartbeat(source, self._clock())

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
        caller: Caller | None = None
        text: str | None
        try:
            caller = self._authenticate(operation, request)
            headers.update(self._rate_limit(operation, caller))
            if isinstance(caller, ApiKeyConfig):
                authorize(operation, caller)
            fault = self.faults.take(operation.name)
            if fault is not None:
                await self._before_operation(fault, caller)
            if malformed:
                raise ApiError(400, [error("invalid_json", "The request body is not valid JSON")])
            if operation.request_schema is not None:
                check_body(operation.request_schema, body)
            status, text = self._answer(operation.name, request, body, caller)
            if fault is not None and fault.kind == "lose_response":
                raise ApiError(fault.status, [error("bad_gateway", "The response was lost on its way back")])
        except ApiError as failure:
            status, text = failure.status, json.dumps(failure.envelope(request_id))
            headers.update(failure.headers)
        self._record(request, operation.name, body, status, caller)
        if text is None:
            return web.Response(status=status, headers=headers)
        return web.Response(status=status, text=text, content_type="application/json", headers=headers)

    def _authenticate(self, operation: Operation, request: web.Request) -> Caller:
        if operation.auth == "alert_source":
            source_type = "http" if operation.name == "create_alert_event" else "heartbeat"
            return authenticate_source(request, self.config.alert_sources, source_type)
        return authenticate_key(request, self.config.keys)

    def _rate_limit(self, operation: Operation, caller: Caller) -> dict[str, str]:
        """Spend a token of the caller's bucket: the API key's, or the alert source's for alert events."""
        config = self.config
        if isinstance(caller, ApiKeyConfig):
            limiter, bucket = self._limiter, caller.name
            limit, refill = config.rate_limit_per_minute, config.refill_per_second
        elif operation.name == "create_alert_event":
            limiter, bucket = self._source_limiter, caller.id
            limit, refill = config.alert_events_per_minute, config.alert_events_refill_per_second
        else:
            return {}
        if limit is None:
            return {}
        decision = limiter.take(bucket, limit, refill)
        wall_now = time.time()
        # incident.io documents its X-RateLimit headers for API-key requests only; a 429 says Retry-After always.
        headers = decision.headers(wall_now) if isinstance(caller, ApiKeyConfig) else {}
        if decision.allowed:
            return headers
        headers["Retry-After"] = retry_after_header(decision.seconds_until_next, config.retry_after_form, wall_now)
        raise ApiError(
            429,
            [error("too_many_requests", TOO_MANY_REQUESTS_MESSAGE)],
            headers=headers,
            extra={
                "rate_limit": {
                    "name": caller.name,
                    "limit": decision.limit,
                    "remaining": decision.remaining,
                    "retry_after": rfc3339(wall_now + decision.seconds_until_next),
                }
            },
        )

    async def _before_operation(self, fault: Fault, caller: Caller) -> None:
        if fault.kind in ("hang", "slow"):
            await self._wait_unless_stopping(fault.seconds)
        if fault.kind == "hang":
            raise ApiError(fault.status, [error("gateway_timeout", "The request timed out")])
        if fault.kind == "fail":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            extra: dict[str, Any] = {}
            if fault.status == 429:
                wait = int(fault.retry_after) if fault.retry_after and fault.retry_after.isdigit() else 1
                limit = (
                    self.config.rate_limit_per_minute
                    if isinstance(caller, ApiKeyConfig)
                    else self.config.alert_events_per_minute
                )
                extra["rate_limit"] = {
                    "name": caller.name,
                    "limit": limit or 0,
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

    def _record(self, request: web.Request, operation: str, body: Any, status: int, caller: Caller | None) -> None:
        key_name = caller.name if isinstance(caller, ApiKeyConfig) else None
        source_id = caller.id if isinstance(caller, AlertSourceConfig) else None
        # request.path leaves out the query string, where an alert source's token may be.
        entry = RecordedRequest(
            request.method, request.path, operation, body, status, key_name, self._clock(), source_id
        )
        with self._lock:
            self._requests.append(entry)
        caller_name = f"alert source {source_id}" if source_id else f"key {key_name}"
        logger.debug("%s %s -> %d (%s, %s)", entry.method, entry.path, status, operation, caller_name)

    # --- the operations ---------------------------------------------------------------------------------

    def _answer(self, operation: str, request: web.Request, body: Any, caller: Caller) -> tuple[int, str | None]:
        """The work of an authenticated, authorised, valid request: its status and JSON body (None for 204)."""
        config, path = self.config, request.match_info
        if isinstance(caller, AlertSourceConfig):
            if operation == "create_alert_event":
                return 202, json.dumps(self._alerts.receive(caller, body, self._clock()))
            self._alerts.ping(caller, self._clock())
            return 204, None
        match operation:
            case "create_incident":
                return 200, self._incidents.create(body, caller)
            case "show_incident":
                return 200, self._incidents.show(path["id"])
            case "edit_incident":
                return 200, self._incidents.edit(path["id"], body, caller)
            case "identity":
                answer = organisation.identity(caller)
            case "list_incident_statuses":
                answer = organisation.incident_statuses(config)
            case "list_severities":
                answer = organisation.severities(config)
            case "show_alert_source":
                answer = organisation.alert_source(config, path["id"], self.url)
            case "list_custom_fields":
                answer = organisation.custom_fields(config)
            case _:
                answer = options_page(config.custom_fields, dict(request.query))
        return 200, json.dumps(answer)

    async def _unknown_route(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        failure = not_found(f"No route for {request.method} {request.path}")
        return web.json_response(failure.envelope(request_id), status=404, headers={"X-Request-Id": request_id})
