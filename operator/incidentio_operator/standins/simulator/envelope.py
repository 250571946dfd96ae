"""incident.io's error envelope: the answer type, its error details, and schema violations turned into them."""

from __future__ import annotations

from typing import Any

from incidentio_operator.standins.simulator.spec import validator

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
TOO_MANY_REQUESTS_MESSAGE = (
    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
)


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


def not_found(message: str) -> ApiError:
    return ApiError(404, [error("not_found", message)])


def invalid(message: str, field: str) -> ApiError:
    return ApiError(422, [error("invalid_value", message, field)])


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


def check_body(schema_name: str, body: Any) -> None:
    """Refuse a body that breaks its schema with 422 and one error per field."""
    problems = validation_errors(schema_name, body)
    if problems:
        raise ApiError(422, problems)
