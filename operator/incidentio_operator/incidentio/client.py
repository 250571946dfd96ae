"""The one incident.io API client: shared HTTP connections, pacing per key and per alert source, retries, errors."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, TypeVar
from urllib.parse import quote, urlencode

import httpx

from incidentio_operator import __version__
from incidentio_operator.incidentio.account import Account, AlertSourceAccount
from incidentio_operator.incidentio.alertsources import AlertEvent, AlertEventAccepted, AlertSource
from incidentio_operator.incidentio.customfields import CustomField, CustomFieldOption
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
from incidentio_operator.incidentio.ratelimit import ALERT_SOURCE_RATE_LIMIT, Priority, RateLimit, RateLimiter
from incidentio_operator.incidentio.retry import backoff_delay, parse_retry_after
from incidentio_operator.incidentio.transport import AiohttpTransport

USER_AGENT = f"incidentio-operator/{__version__}"
# The most options GET /v1/custom_field_options returns a page (its page_size parameter's maximum in the spec).
OPTIONS_PAGE_SIZE = 250

logger = logging.getLogger("incidentio_operator.incidentio")

T = TypeVar("T")


class RequestObserver(Protocol):
    """Told about every HTTP attempt and every rate-limit wait (the operator turns these into metrics)."""

    def request_finished(self, operation: str, status: int | None, seconds: float) -> None: ...

    def rate_limit_waited(self, seconds: float) -> None: ...


class IncidentIoClient:
    """incident.io's API for the operator; one per process, shared by every destination.

    Calls with an API key are paced per key (``rate_limit``), alert events and heartbeat pings per alert
    source (``alert_source_rate_limit``), each with its own token bucket; a 429 pauses that bucket for
    its Retry-After. Calls made with ``Priority.BACKGROUND`` (edits that keep an open incident current,
    reads of open incidents) share the key's bucket but wait behind every foreground call (creates,
    closes), and have connection slots of their own, so a burst of them never delays a create.
    Network errors, timeouts, 429 and 5xx are retried up to ``max_attempts``; other 4xx are raised at
    once. Every call raises an ``IncidentIoError`` subclass on failure, and the observer hears of each
    attempt under the call's operation name.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_attempts: int = 4,
        rate_limit: RateLimit = RateLimit(),
        alert_source_rate_limit: RateLimit = ALERT_SOURCE_RATE_LIMIT,
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
        self._source_limiter = RateLimiter(alert_source_rate_limit, clock=clock, sleep=sleep)
        self._max_connections = max_connections
        self._connection_slots: dict[Hashable, asyncio.Semaphore] = {}
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

    async def get_incident(
        self, account: Account, incident_id: str, *, priority: Priority = Priority.FOREGROUND
    ) -> Incident:
        path = f"/v2/incidents/{quote(incident_id, safe='')}"
        body = await self._call(account, "show_incident", "GET", path, priority=priority)
        return _parse("show_incident", Incident.from_json, body)

    async def edit_incident(
        self,
        account: Account,
        incident_id: str,
        request: EditIncidentRequest,
        *,
        priority: Priority = Priority.FOREGROUND,
    ) -> Incident:
        """POST /v2/incidents/{id}/actions/edit: a close (foreground), or an update of an open incident (background)."""
        path = f"/v2/incidents/{quote(incident_id, safe='')}/actions/edit"
        body = await self._call(account, "edit_incident", "POST", path, request.to_json(), priority=priority)
        return _parse("edit_incident", Incident.from_json, body)

    async def get_alert_source(self, account: Account, alert_source_id: str) -> AlertSource:
        """GET /v2/alert_sources/{id}: the source's ID, name, type and heartbeat options; NotFound if none."""
        body = await self._call(
            account, "show_alert_source", "GET", f"/v2/alert_sources/{quote(alert_source_id, safe='')}"
        )
        return _parse("show_alert_source", AlertSource.from_json, body)

    async def list_custom_fields(self, account: Account) -> list[CustomField]:
        """GET /v2/custom_fields: every custom field of the account (the endpoint is not paginated)."""
        body = await self._call(account, "list_custom_fields", "GET", "/v2/custom_fields")
        return _parse_list("list_custom_fields", body, "custom_fields", CustomField.from_json)

    async def list_custom_field_options(self, account: Account, custom_field_id: str) -> list[CustomFieldOption]:
        """GET /v1/custom_field_options: every option of one field, following ``pagination_meta.after``."""
        options: list[CustomFieldOption] = []
        query = {"custom_field_id": custom_field_id, "page_size": str(OPTIONS_PAGE_SIZE)}
        seen: set[str] = set()
        while True:
            path = f"/v1/custom_field_options?{urlencode(query)}"
            body = await self._call(account, "list_custom_field_options", "GET", path)
            page = _parse_list("list_custom_field_options", body, "custom_field_options", CustomFieldOption.from_json)
            options += page
            after = _next_page(body)
            # The last page may still name an `after`; an empty page ends the list either way.
            if not page or after is None:
                return options
            if after in seen:
                raise UnexpectedResponse(
                    f"incident.io repeated the page after {after!r}", operation="list_custom_field_options"
                )
            seen.add(after)
            query["after"] = after

    async def create_alert_event(self, source: AlertSourceAccount, event: AlertEvent) -> AlertEventAccepted:
        """POST /v2/alert_events/http/{alert_source_config_id} with the source's token; incident.io answers 202."""
        path = f"/v2/alert_events/http/{quote(source.config_id, safe='')}"
        response = await self._send_with_token(source, "create_alert_event", "POST", path, event.to_json())
        return _parse("create_alert_event", AlertEventAccepted.from_json, _json("create_alert_event", response))

    async def ping_heartbeat(self, source: AlertSourceAccount) -> None:
        """POST /v2/heartbeat/{alert_source_config_id}/ping with the heartbeat source's token; 204 on success."""
        path = f"/v2/heartbeat/{quote(source.config_id, safe='')}/ping"
        await self._send_with_token(source, "ping_heartbeat", "POST", path)

    async def _call(
        self,
        account: Account,
        operation: str,
        method: str,
        path: str,
        payload: object = None,
        *,
        priority: Priority = Priority.FOREGROUND,
    ) -> object:
        secret = account.api_key.reveal()
        pacing = (self._limiter, account.api_key)
        response = await self._request(operation, method, account.base_url, path, secret, pacing, payload, priority)
        return _json(operation, response)

    async def _send_with_token(
        self, source: AlertSourceAccount, operation: str, method: str, path: str, payload: object = None
    ) -> httpx.Response:
        pacing = (self._source_limiter, ("alert_source", source.base_url, source.config_id))
        return await self._request(operation, method, source.base_url, path, source.token.reveal(), pacing, payload)

    async def _request(
        self,
        operation: str,
        method: str,
        base_url: str,
        path: str,
        secret: str,
        pacing: tuple[RateLimiter, Hashable],
        payload: object,
        priority: Priority = Priority.FOREGROUND,
    ) -> httpx.Response:
        """The successful response, after pacing and retries; raises the last error otherwise."""
        limiter, pace_key = pacing
        url = base_url.rstrip("/") + path
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
            async with self._connections_for(pace_key, priority):
                waited = await limiter.acquire(pace_key, priority)
                try:
                    if waited > 0 and self._observer is not None:
                        self._observer.rate_limit_waited(waited)
                    started = self._clock()
                    response = await self._send(operation, method, url, content, headers)
                finally:
                    limiter.release(pace_key)
            if isinstance(response, Unreachable):
                error: IncidentIoError = response
                self._finished(operation, method, path, None, attempt, started, str(error))
            else:
                self._finished(operation, method, path, response.status_code, attempt, started, None)
                if response.is_success:
                    return response
                error = _redacted(self._error(operation, response), secret)
                if isinstance(error, RateLimited):
                    limiter.pause(pace_key, error.retry_after)
            if not error.retryable or attempt == self._max_attempts:
                raise error
            delay = self._retry_delay(error, attempt)
            if delay is None:
                raise error
            if delay > 0:
                await self._sleep(delay)

    def _connections_for(self, pace_key: Hashable, priority: Priority) -> asyncio.Semaphore:
        # Per key, so callers queued behind one key's rate limit never hold connections another key needs;
        # and per priority, so background callers queued behind the foreground never hold a create's slot.
        # It also keeps httpcore's own queue short: its pool rescans every queued request on each change.
        slots = self._connection_slots.get((pace_key, priority))
        if slots is None:
            slots = self._connection_slots[(pace_key, priority)] = asyncio.Semaphore(self._max_connections)
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


def _next_page(body: object) -> str | None:
    """``pagination_meta.after`` (PaginationMetaResultV1): where the next page starts, if incident.io says."""
    meta = body.get("pagination_meta") if isinstance(body, dict) else None
    after = meta.get("after") if isinstance(meta, dict) else None
    return after if isinstance(after, str) and after else None


def _redacted(error: IncidentIoError, secret: str) -> IncidentIoError:
    """Strip the key from anything incident.io (or a proxy in between) echoed back into an error."""
    if secret not in str(error) and not any(secret in text for text in error.messages):
        return error
    error.args = (str(error).replace(secret, "<redacted>"),)
    error.messages = tuple(text.replace(secret, "<redacted>") for text in error.messages)
    return error
