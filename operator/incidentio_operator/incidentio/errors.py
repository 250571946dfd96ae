"""incident.io failures as typed exceptions, and the mapping from an HTTP error response to them."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, ClassVar


class IncidentIoError(Exception):
    """A call to incident.io failed; the message is safe to show a user and to quote to support."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        messages: tuple[str, ...] = (),
        fields: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.status = status
        self.error_type = error_type
        self.request_id = request_id
        self.messages = messages
        self.fields = fields

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, operation={self.operation!r})"


class Unauthorized(IncidentIoError):
    """401: the API key is unknown or revoked."""


class Forbidden(IncidentIoError):
    """403: the API key lacks a role; `.messages` says which."""


class ValidationFailed(IncidentIoError):
    """400 or 422: incident.io refused the request's content; `.fields` names the offending fields."""


class NotFound(IncidentIoError):
    """404: the incident (or other object) does not exist in this account."""


class RateLimited(IncidentIoError):
    """429: the key's bucket is empty; `.retry_after` is the wait incident.io asked for, when it said."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class ServerError(IncidentIoError):
    """5xx: incident.io failed; worth retrying."""

    retryable = True


class Unreachable(IncidentIoError):
    """No HTTP response at all: connection refused or lost, or the call timed out."""

    retryable = True


class UnexpectedResponse(IncidentIoError):
    """A response this client cannot use: not JSON, or missing what the product needs."""


_FIXED_MESSAGES = {401: "Unauthorized", 403: "Forbidden"}


def error_from_response(operation: str, status: int, body: bytes, retry_after: float | None = None) -> IncidentIoError:
    """Build the exception for an HTTP error response from incident.io's error envelope, if it has one."""
    envelope = _parse_envelope(body)
    error_type = _optional_str(envelope.get("type"))
    request_id = _optional_str(envelope.get("request_id"))
    messages: list[str] = []
    fields: list[str] = []
    details: list[str] = []
    errors = envelope.get("errors")
    for entry in errors if isinstance(errors, list) else []:
        if not isinstance(entry, dict):
            continue
        text = _optional_str(entry.get("message")) or _optional_str(entry.get("code"))
        source = entry.get("source")
        field = _optional_str(source.get("field")) if isinstance(source, dict) else None
        if field:
            fields.append(field)
        if text:
            messages.append(text)
            details.append(f"{text} ({field})" if field else text)
    if status in _FIXED_MESSAGES:
        message = f"HTTP {status}: {_FIXED_MESSAGES[status]}"
    else:
        message = f"HTTP {status}: {'; '.join(details) or _reason_phrase(status)}"
        if request_id:
            message += f" (request_id {request_id})"
    common: dict[str, Any] = {
        "operation": operation,
        "status": status,
        "error_type": error_type,
        "request_id": request_id,
        "messages": tuple(messages),
        "fields": tuple(fields),
    }
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **common)
    return _error_class(status)(message, **common)


def _error_class(status: int) -> type[IncidentIoError]:
    if status == 401:
        return Unauthorized
    if status == 403:
        return Forbidden
    if status in (400, 422):
        return ValidationFailed
    if status == 404:
        return NotFound
    if status >= 500:
        return ServerError
    return IncidentIoError


def _parse_envelope(body: bytes) -> dict[str, Any]:
    # Proxies and load balancers answer with HTML or plain text; those still become a typed error.
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"
