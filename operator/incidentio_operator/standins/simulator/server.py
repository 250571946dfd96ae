"""The simulator's HTTP server: incident.io's endpoints, auth, rate limits, faults, and what tests inspect."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from aiohttp import web

from incidentio_operator.standins.simulator.config import (
    INVESTIGATING_STATUS_ID,
    SEEDED_AT,
    ApiKeyConfig,
    IncidentStatusSeed,
    SeveritySeed,
    SimulatorConfig,
)
from incidentio_operator.standins.simulator.faults import Fault, Faults
from incidentio_operator.standins.simulator.ratelimit import RateLimiter, retry_after_header, rfc3339
from incidentio_operator.standins.simulator.spec import OPERATIONS, Operation, validator

logger = logging.getLogger(__name__)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DASHBOARD_URL = "https://app.incident.io/simulated"
SLACK_TEAM_ID = "T0SIMULATED"
TOO_MANY_REQUESTS_MESSAGE = (
    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
)
ERROR_TYPES = {
    400: "bad_request",
    401: "authentication_error",
    403: "authorization_error",
    404: "not_found",
    409: "conflict",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}
# How long stop() lets in-flight requests finish; hung and slow requests are released at once on stop.
SHUTDOWN_GRACE_SECONDS = 2.0


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


class ApiError(Exception):
    """An answer in incident.io's error envelope."""

    def __init__(
        self,
        status: int,
        errors: list[dict[str, Any]],
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def envelope(self, request_id: str) -> dict[str, Any]:
        error_type = ERROR_TYPES.get(self.status, "internal_error" if self.status >= 500 else "bad_request")
        return {
            "type": error_type,
            "status": self.status,
            "request_id": request_id,
            **self.extra,
            "errors": self.errors,
        }


def error(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"code": code, "message": message}
    if field:
        detail["source"] = {"field": field}
    return detail


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


def status_body(status: IncidentStatusSeed) -> dict[str, Any]:
    return {
        "id": status.id,
        "name": status.name,
        "description": status.description,
        "category": status.category,
        "rank": status.rank,
        "created_at": SEEDED_AT,
        "updated_at": SEEDED_AT,
    }


def severity_body(severity: SeveritySeed) -> dict[str, Any]:
    return {
        "id": severity.id,
        "name": severity.name,
        "description": severity.description,
        "rank": severity.rank,
        "created_at": SEEDED_AT,
        "updated_at": SEEDED_AT,
    }


def validation_errors(schema_name: str, body: Any) -> list[dict[str, Any]]:
    """The request body's schema violations, one per field, in incident.io's error-detail form."""
    by_field: dict[str, dict[str, Any]] = {}
    for violation in validator(schema_name).iter_errors(body):
        path = ".".join(str(part) for part in violation.absolute_path)
        if violation.validator == "required":
            instance = violation.instance if isinstance(violation.instance, dict) else {}
            for name in violation.validator_value:
                if name not in instance:
                    field = f"{path}.{name}" if path else name
                    by_field.setdefault(field, error("is_required", f"{field} is required", field))
        elif violation.validator == "type":
            by_field[path] = error(
                "invalid_type", f"{path or 'the body'} must be of type {violation.validator_value}", path
            )
        elif violation.validator == "enum":
            allowed = ", ".join(str(value) for value in violation.validator_value)
            by_field.setdefault(path, error("invalid_value", f"{path} must be one of: {allowed}", path))
        else:
            by_field.setdefault(path, error("is_invalid", violation.message, path))
    return [by_field[field] for field in sorted(by_field)]


class Simulator:
    """A local incident.io: start it, point a client at ``url``, inspect ``incidents`` and ``requests``."""

    def __init__(
        self, config: SimulatorConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self.faults = Faults()
        self._clock = clock
        self._limiter = RateLimiter(clock)
        # Handlers run on the server's loop while tests read from other threads.
        self._lock = threading.Lock()
        self._incidents: list[dict[str, Any]] = []
        self._by_id: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[str, str] = {}
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
        app.router.add_get("/_simulator/incidents", self._admin_incidents)
        app.router.add_get("/_simulator/requests", self._admin_requests)
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
        with self._lock:
            return copy.deepcopy(self._incidents)

    def incident(self, incident_id: str) -> dict[str, Any]:
        """One incident by ID or by the numeric part of its reference; KeyError when there is none."""
        with self._lock:
            found = self._find_incident(incident_id, allow_number=True)
            if found is None:
                raise KeyError(incident_id)
            return copy.deepcopy(found)

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
            status, text = self._run(operation, request, body, key)
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

    # --- operations --------------------------------------------------------------------------------------

    def _run(
        self, operation: Operation, request: web.Request, body: Any, key: ApiKeyConfig
    ) -> tuple[int, str]:
        """The operation's status and JSON body; raises ApiError for anything incident.io would refuse."""
        if operation.request_schema is not None:
            problems = validation_errors(operation.request_schema, body)
            if problems:
                raise ApiError(422, problems)
        if operation.name == "identity":
            identity = {
                "name": key.name,
                "roles": sorted(key.roles),
                "dashboard_url": DASHBOARD_URL,
                "team_roles": [],
                "teams": [],
            }
            return 200, json.dumps({"identity": identity})
        if operation.name == "list_incident_statuses":
            return 200, json.dumps(
                {"incident_statuses": [status_body(s) for s in self.config.incident_statuses]}
            )
        if operation.name == "list_severities":
            return 200, json.dumps({"severities": [severity_body(s) for s in self.config.severities]})
        with self._lock:
            if operation.name == "create_incident":
                incident = self._create(body, key)
            elif operation.name == "show_incident":
                incident = self._existing(request.match_info["id"], allow_number=True)
            else:
                incident = self._edit(self._existing(request.match_info["id"], allow_number=False), body, key)
            # Serialised under the lock so a concurrent edit cannot tear the response.
            return operation.response_status, json.dumps({"incident": incident})

    def _existing(self, incident_id: str, *, allow_number: bool) -> dict[str, Any]:
        incident = self._find_incident(incident_id, allow_number=allow_number)
        if incident is None:
            raise ApiError(404, [error("not_found", f"No incident with ID {incident_id!r}")])
        return incident

    def _find_incident(self, incident_id: str, *, allow_number: bool) -> dict[str, Any] | None:
        found = self._by_id.get(incident_id)
        if (
            found is None
            and allow_number
            and incident_id.isdigit()
            and 0 < int(incident_id) <= len(self._incidents)
        ):
            found = self._incidents[int(incident_id) - 1]
        return found

    def _status(self, status_id: str, field: str) -> IncidentStatusSeed:
        for status in self.config.incident_statuses:
            if status.id == status_id:
                return status
        raise ApiError(
            422, [error("invalid_value", f"No incident status with ID {status_id!r} exists", field)]
        )

    def _severity(self, severity_id: str, field: str) -> SeveritySeed:
        for severity in self.config.severities:
            if severity.id == severity_id:
                return severity
        raise ApiError(422, [error("invalid_value", f"No severity with ID {severity_id!r} exists", field)])

    def _create(self, body: dict[str, Any], key: ApiKeyConfig) -> dict[str, Any]:
        existing_id = self._idempotency.get(body["idempotency_key"])
        if existing_id is not None:
            return self._by_id[existing_id]
        severity_id = body.get("severity_id")
        if severity_id is None and self.config.severity_required:
            raise ApiError(
                422, [error("is_required", "A severity is required to open an incident", "severity_id")]
            )
        severity = self._severity(severity_id, "severity_id") if severity_id is not None else None
        status = self._status(body.get("incident_status_id", INVESTIGATING_STATUS_ID), "incident_status_id")
        number = len(self._incidents) + 1
        now = wall_timestamp()
        incident: dict[str, Any] = {
            "id": incident_id(number),
            "reference": f"INC-{number}",
            "permalink": f"{self.config.permalink_base}/{number}",
            "name": body.get("name", f"INC-{number}"),
            "mode": body.get("mode", "standard"),
            "visibility": body["visibility"],
            "incident_status": status_body(status),
            "creator": {"api_key": {"id": api_key_id(key.name), "name": key.name}},
            "custom_field_entries": [],
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
        self._incidents.append(incident)
        self._by_id[incident["id"]] = incident
        self._idempotency[body["idempotency_key"]] = incident["id"]
        return incident

    def _edit(self, incident: dict[str, Any], body: dict[str, Any], key: ApiKeyConfig) -> dict[str, Any]:
        changes: dict[str, Any] = body["incident"]
        updates: dict[str, Any] = {}
        if "severity_id" in changes:
            updates["severity"] = severity_body(
                self._severity(changes["severity_id"], "incident.severity_id")
            )
        if "incident_status_id" in changes:
            status = self._status(changes["incident_status_id"], "incident.incident_status_id")
            self._check_close_allowed(incident, status, key)
            updates["incident_status"] = status_body(status)
        for field in ("name", "summary", "call_url"):
            if field in changes:
                updates[field] = changes[field]
        if "slack_channel_name_override" in changes:
            updates["slack_channel_name"] = changes["slack_channel_name_override"]
        incident.update(updates)
        incident["updated_at"] = wall_timestamp()
        return incident

    def _check_close_allowed(
        self, incident: dict[str, Any], status: IncidentStatusSeed, key: ApiKeyConfig
    ) -> None:
        role = self.config.close_requires_role
        closing = status.category == "closed" and incident["incident_status"]["category"] != "closed"
        if closing and role is not None and role not in key.roles:
            message = (
                f"Incident {incident['reference']} must go through the post-incident flow before it can "
                f"be closed. To close it directly, use an API key with the '{role}' role, which is "
                "allowed to skip the post-incident flow."
            )
            raise ApiError(422, [error("invalid_value", message, "incident.incident_status_id")])

    # --- admin and fallbacks -------------------------------------------------------------------------------

    async def _admin_incidents(self, request: web.Request) -> web.Response:
        return web.json_response({"incidents": self.incidents})

    async def _admin_requests(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": [asdict(entry) for entry in self.requests]})

    async def _unknown_route(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        failure = ApiError(404, [error("not_found", f"No route for {request.method} {request.path}")])
        return web.json_response(
            failure.envelope(request_id), status=404, headers={"X-Request-Id": request_id}
        )
