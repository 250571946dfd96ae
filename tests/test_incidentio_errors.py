"""From an HTTP error response to a typed exception with incident.io's own message and request id."""

from __future__ import annotations

import json

import pytest

from incidentio_operator.incidentio import (
    Forbidden,
    IncidentIoError,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from incidentio_operator.incidentio.errors import error_from_response


def envelope(status: int, *errors: dict[str, object], error_type: str = "x", request_id: str = "req-1") -> bytes:
    return json.dumps({"type": error_type, "status": status, "request_id": request_id, "errors": list(errors)}).encode()


def test_401_reads_exactly_unauthorized_and_keeps_the_detail() -> None:
    body = envelope(
        401,
        {"code": "missing_authorization_material", "message": "No authorization material provided"},
        error_type="authentication_error",
        request_id="8e3c",
    )

    error = error_from_response("identity", 401, body)

    assert isinstance(error, Unauthorized)
    assert str(error) == "HTTP 401: Unauthorized"
    assert (error.status, error.error_type, error.request_id) == (401, "authentication_error", "8e3c")
    assert error.messages == ("No authorization material provided",)
    assert error.operation == "identity"
    assert not error.retryable


def test_403_reads_exactly_forbidden_with_the_missing_permission_in_messages() -> None:
    body = envelope(403, {"code": "forbidden", "message": "Your API key is missing the role incident_creator"})

    error = error_from_response("create_incident", 403, body)

    assert isinstance(error, Forbidden)
    assert str(error) == "HTTP 403: Forbidden"
    assert error.messages == ("Your API key is missing the role incident_creator",)
    assert not error.retryable


@pytest.mark.parametrize("status", [400, 422])
def test_validation_errors_name_each_message_and_its_field(status: int) -> None:
    body = envelope(
        status,
        {"code": "is_required", "message": "A severity is required", "source": {"field": "severity_id"}},
        {"code": "invalid", "message": "Name is too long"},
        error_type="validation_error",
        request_id="6317",
    )

    error = error_from_response("create_incident", status, body)

    assert isinstance(error, ValidationFailed)
    assert str(error) == (f"HTTP {status}: A severity is required (severity_id); Name is too long (request_id 6317)")
    assert error.fields == ("severity_id",)
    assert error.messages == ("A severity is required", "Name is too long")
    assert not error.retryable


def test_404_is_not_found() -> None:
    error = error_from_response("show_incident", 404, envelope(404, {"code": "not_found", "message": "Not found"}))

    assert isinstance(error, NotFound)
    assert str(error) == "HTTP 404: Not found (request_id req-1)"
    assert not error.retryable


def test_429_is_rate_limited_and_carries_the_wait() -> None:
    body = envelope(429, {"code": "too_many_requests", "message": "Too many requests"})

    error = error_from_response("create_incident", 429, body, retry_after=1.0)

    assert isinstance(error, RateLimited)
    assert error.retry_after == 1.0
    assert error.retryable


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_a_retryable_server_error(status: int) -> None:
    error = error_from_response("edit_incident", status, envelope(status, {"message": "boom"}))

    assert isinstance(error, ServerError)
    assert error.retryable


def test_a_non_json_body_still_gives_a_sensible_error() -> None:
    error = error_from_response("create_incident", 502, b"<html><body>Bad gateway from nginx</body></html>")

    assert isinstance(error, ServerError)
    assert str(error) == "HTTP 502: Bad Gateway"
    assert (error.request_id, error.error_type, error.messages, error.fields) == (None, None, (), ())


@pytest.mark.parametrize("body", [b"", b"[]", b'{"errors": "nope"}', b'{"errors": [42, {"source": 1}]}'])
def test_malformed_envelopes_do_not_break_the_mapping(body: bytes) -> None:
    error = error_from_response("identity", 500, body)

    assert str(error) == "HTTP 500: Internal Server Error"


def test_an_error_without_a_message_falls_back_to_its_code() -> None:
    error = error_from_response("edit_incident", 422, envelope(422, {"code": "lifecycle_refused"}))

    assert error.messages == ("lifecycle_refused",)


def test_other_4xx_are_plain_errors_that_are_not_retried() -> None:
    error = error_from_response("create_incident", 409, b"")

    assert type(error) is IncidentIoError
    assert str(error) == "HTTP 409: Conflict"
    assert not error.retryable


def test_repr_shows_the_message_and_operation() -> None:
    error = error_from_response("identity", 401, b"")

    assert repr(error) == "Unauthorized('HTTP 401: Unauthorized', operation='identity')"
