"""Kubernetes API errors of the stand-in, as `Status` objects with the real reasons and codes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

REASONS: Mapping[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """A failed API call: the HTTP status and the `Status` body the server answered with."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        # A Status is a list-like object: an expired continue token answers with a fresh one here.
        self.metadata: dict[str, Any] = dict(metadata or {})

    def to_status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": dict(self.metadata),
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.status,
        }
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def from_status(cls, status: int, body: Any) -> ApiError:
        """Rebuild the error a client received; tolerates bodies that are not `Status` objects."""
        if isinstance(body, Mapping) and body.get("kind") == "Status":
            return cls(
                status,
                str(body.get("reason") or REASONS.get(status, "Unknown")),
                str(body.get("message") or ""),
                body.get("details"),
                metadata=body.get("metadata"),
            )
        return cls(status, REASONS.get(status, "Unknown"), str(body))


def _details(name: str | None, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {"group": group, "kind": kind} if group else {"kind": kind}
    if name:
        details["name"] = name
    return details


def qualified(plural: str, group: str) -> str:
    """The `plural.group` spelling the real server uses in messages (just `plural` for the core group)."""
    return f"{plural}.{group}" if group else plural


def status_error(status: int, message: str) -> ApiError:
    """An error with the reason the real server uses for that code (fault injection, generic failures)."""
    return ApiError(status, REASONS.get(status, "Unknown"), message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(plural, group)} "{name}" not found', _details(name, group, plural))


def no_such_path() -> ApiError:
    return ApiError(
        404,
        "NotFound",
        "the server could not find the requested resource",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]},
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(plural, group)} "{name}" already exists',
        _details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str, why: str | None = None) -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {why}',
        _details(name, group, plural),
    )


def method_not_allowed(method: str) -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method})"
    )


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json-patch+json, application/merge-patch+json (got {content_type or 'none'})",
    )


def expired(message: str, *, continue_token: str = "") -> ApiError:
    """410 Expired, the real server's answer to a resourceVersion or continue token older than its history.

    Source: k8s.io/apimachinery/pkg/api/errors `NewResourceExpired` (reason `Expired`, not `Gone`); the
    watch cache's message is "too old resource version: X (Y)" (apiserver/pkg/storage/cacher/watch_cache.go),
    and an expired continue token comes with a new token that continues at the latest revision
    (apiserver/pkg/storage/etcd3 `handleCompactedErrorForPaging`).
    """
    return ApiError(410, "Expired", message, metadata={"continue": continue_token} if continue_token else None)


def forbidden(plural: str, group: str, name: str, why: str, causes: Sequence[Mapping[str, str]] = ()) -> ApiError:
    """403 Forbidden worded like apimachinery's `NewForbidden`: `plural.group "name" is forbidden: why`."""
    subject = f'{qualified(plural, group)} "{name}"' if name else qualified(plural, group)
    details = _details(name, group, plural)
    if causes:
        details["causes"] = [dict(cause) for cause in causes]
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", details)


CAUSE_REASONS: Sequence[tuple[str, str]] = (
    ("Unsupported value", "FieldValueNotSupported"),
    ("Required value", "FieldValueRequired"),
    ("Duplicate value", "FieldValueDuplicate"),
    ("Forbidden", "FieldValueForbidden"),
    ("Too long", "FieldValueTooLong"),
    ("Too many", "FieldValueTooMany"),
    ("Not found", "FieldValueNotFound"),
    ("Invalid value", "FieldValueInvalid"),
)


def invalid(kind: str, group: str, name: str, problems: Sequence[tuple[str, str]]) -> ApiError:
    """422 Invalid, worded like the real server: `Kind.group "name" is invalid: field: message`."""
    causes = [
        {
            "reason": next((r for prefix, r in CAUSE_REASONS if message.startswith(prefix)), "FieldValueInvalid"),
            "message": message,
            "field": field,
        }
        for field, message in problems
    ]
    lines = [f"{field}: {message}" if field else message for field, message in problems]
    summary = lines[0] if len(lines) == 1 else "[" + ", ".join(lines) + "]"
    kind_name = f"{kind}.{group}" if group else kind
    details = _details(name, group, kind)
    details["causes"] = causes
    return ApiError(422, "Invalid", f'{kind_name} "{name}" is invalid: {summary}', details)
