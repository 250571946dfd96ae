"""The one incident.io API client: shared HTTP connections, per-key pacing, retries, typed errors."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, TypeVar
from urllib.parse import quote

import httpx

from incidentio_operator import __version__
from incidentio_operator.incidentio.account import Account, ApiKey
from incidentio_operator.incidentio.errors import (
    IncidentIoError,
    RateLimited,
    UnexpectedResponse,
    Unreachable,
    error_from_response,
)
from incidentio_operator.incidentio.models import (
    CreateIncidentRequest,
    EditIncidentRequest,
    Identity,
    Incident,
    IncidentStatus,
    Severity,
)
from incidentio_operator.incidentio.parsing import list_of
from incidentio_operator.incidentio.ratelimit import RateLimit, RateLimiter
from incidentio_operator.incidentio.retry import backoff_delay, parse_retry_after
from incidentio_operator.incidentio.transport import AiohttpTransport

USER_AGENT = f"incidentio-operator/{__version__}"

logger = logging.getLogger("incidentio_operator.incidentio")

T = TypeVar("T")


class RequestObserver(Protocol):
    """Told about every HTTP attempt and every rate-limit wait (the operator turns these into metrics)."""

    def request_finished(self, operation: str, status: int | None, seconds: float) -> None: ...

    def rate_limit_waited(self, seconds: float) -> None: ...


class IncidentIoClient:
    """incident.io's API for the operator; one per process, shared by every destination."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_attempts: int = 4,
        rate_limit: RateLimit = RateLimit(),
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        observer: RequestObserver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_connections: int = 100,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._observer = observer
        self._clock = clock
        self._sleep = sleep
        self._limiter = RateLimiter(rate_limit, clock=clock, sleep=sleep)
        self._max_connections = max_connections
        self._connection_slots: dict[ApiKey, asyncio.Semaphore] = {}
        self._http = httpx.AsyncClient(
            transport=transport or AiohttpTransport(max_connections=max_connections),
            # Waiting for a free connection is queueing behind our own requests, not incident.io being slow;
            # each of those requests is bounded by the connect, read and write timeouts.
            timeout=httpx.Timeout(timeout, pool=None),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            # A redirect would carry the Authorization header somewhere nobody configured.
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> IncidentIoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def identity(self, account: Account) -> Identity:
        body = await self._call(account, "identity", "GET", "/v1/identity")
        return _parse("identity", Identity.from_json, body)

    async def list_incident_statuses(self, account: Account) -> list[IncidentStatus]:
        body = await self._call(account, "list_incident_statuses", "GET", "/v1/incident_statuses")
        return _parse_list("list_incident_statuses", body, "incident_statuses", IncidentStatus.from_json)

    async def list_severities(self, account: Account) -> list[Severity]:
        body = await self._call(account, "list_severities", "GET", "/v1/severities")
        return _parse_list("list_severities", body, "severities", Severity.from_json)

    async def create_incident(self, account: Account, request: CreateIncidentRequest) -> Incident:
        body = await self._call(account, "create_incident", "POST", "/v2/incidents", request.to_json())
        return _parse("create_incident", Incident.from_json, body)

    async def get_incident(self, account: Account, incident_id: str) -> Incident:
        path = f"/v2/incidents/{quote(incident_id, safe='')}"
        body = await self._call(account, "show_incident", "GET", path)
        return _parse("show_incident", Incident.from_json, body)

    async def edit_incident(self, account: Account, incident_id: str, request: EditIncidentRequest) -> Incident:
        path = f"/v2/incidents/{quote(incident_id, safe='')}/actions/edit"
        body = await self._call(account, "edit_incident", "POST", path, request.to_json())
        return _parse("edit_incident", Incident.from_json, body)

    async def _call(self, account: Account, operation: str, method: str, path: str, payload: object = None) -> object:
        url = account.base_url.rstrip("/") + path
        secret = account.api_key.reveal()
        headers = {"Authorization": f"Bearer {secret}"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        # Serialised once: every retry of a create sends the same body, so the same idempotency key.
        content = json.dumps(payload).encode() if payload is not None else None
        attempt = 0
        while True:
            attempt += 1
            # A token is taken only with a connection in hand, so a request leaves the moment its slot comes:
            # a queue between the two would bunch requests up and empty the server's bucket before ours.
            async with self._connections_for(account.api_key):
                waited = await self._limiter.acquire(account.api_key)
                try:
                    if waited > 0 and self._observer is not None:
                        self._observer.rate_limit_waited(waited)
                    started = self._clock()
                    response = await self._send(operation, method, url, content, headers)
                finally:
                    self._limiter.release(account.api_key)
            if isinstance(response, Unreachable):
                error: IncidentIoError = response
                self._finished(operation, method, path, None, attempt, started, str(error))
            else:
                self._finished(operation, method, path, response.status_code, attempt, started, None)
                if response.is_success:
                    return _json(operation, response)
                error = _redacted(self._error(operation, response), secret)
                if isinstance(error, RateLimited):
                    self._limiter.pause(account.api_key, error.retry_after)
            if not error.retryable or attempt == self._max_attempts:
                raise error
            delay = self._retry_delay(error, attempt)
            if delay is None:
                raise error
            if delay > 0:
                await self._sleep(delay)

    def _connections_for(self, api_key: ApiKey) -> asyncio.Semaphore:
        # Per key, so callers queued behind one key's rate limit never hold connections another key needs.
        # It also keeps httpcore's own queue short: its pool rescans every queued request on each change.
        slots = self._connection_slots.get(api_key)
        if slots is None:
            slots = self._connection_slots[api_key] = asyncio.Semaphore(self._max_connections)
        return slots

    async def _send(
        self, operation: str, method: str, url: str, content: bytes | None, headers: dict[str, str]
    ) -> httpx.Response | Unreachable:
        try:
            return await self._http.request(method, url, content=content, headers=headers)
        except httpx.TransportError as exc:
            # Built here but raised by the caller, so it carries no httpx exception (and no request headers).
            return Unreachable(f"incident.io unreachable: {self._unreachable_reason(exc)}", operation=operation)

    def _error(self, operation: str, response: httpx.Response) -> IncidentIoError:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        return error_from_response(operation, response.status_code, response.content, retry_after)

    def _retry_delay(self, error: IncidentIoError, attempt: int) -> float | None:
        """Seconds to sleep before the next attempt, or None when the wait is too long to sit through."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            # The paused bucket makes the next acquire wait; past backoff_max the caller reschedules.
            return 0.0 if error.retry_after <= self._backoff_max else None
        return backoff_delay(attempt - 1, base=self._backoff_base, cap=self._backoff_max)

    def _finished(
        self,
        operation: str,
        method: str,
        path: str,
        status: int | None,
        attempt: int,
        started: float,
        failure: str | None,
    ) -> None:
        seconds = self._clock() - started
        if self._observer is not None:
            self._observer.request_finished(operation, status, seconds)
        logger.debug(
            "%s %s -> %s (operation %s, attempt %d/%d, %.3fs)",
            method,
            path,
            status if failure is None else failure,
            operation,
            attempt,
            self._max_attempts,
            seconds,
        )

    def _unreachable_reason(self, exc: httpx.TransportError) -> str:
        if isinstance(exc, httpx.TimeoutException):
            return f"timed out after {self._timeout:g}s"
        causes = _causes(exc)
        if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
            return "connection refused"
        if any(isinstance(cause, socket.gaierror) for cause in causes):
            return "cannot resolve host"
        if isinstance(exc, httpx.ConnectError):
            return "cannot connect"
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return "connection lost before a response"
        return f"transport error ({type(exc).__name__})"


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _json(operation: str, response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        raise UnexpectedResponse(
            f"HTTP {response.status_code}: the response is not JSON",
            operation=operation,
            status=response.status_code,
        ) from None


def _parse(operation: str, parser: Callable[[object], T], body: object) -> T:
    try:
        return parser(body)
    except ValueError as exc:
        raise UnexpectedResponse(f"unexpected response from incident.io: {exc}", operation=operation) from None


def _parse_list(operation: str, body: object, key: str, item: Callable[[object], T]) -> list[T]:
    return _parse(operation, lambda data: list_of(data, key, item), body)


def _redacted(error: IncidentIoError, secret: str) -> IncidentIoError:
    """Strip the key from anything incident.io (or a proxy in between) echoed back into an error."""
    if secret not in str(error) and not any(secret in text for text in error.messages):
        return error
    error.args = (str(error).replace(secret, "<redacted>"),)
    error.messages = tuple(text.replace(secret, "<redacted>") for text in error.messages)
    return error
