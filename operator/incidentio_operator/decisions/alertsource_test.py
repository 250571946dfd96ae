"""Judging an AlertEvent destination's connection test: its token, and its alert source when an API key can read it."""

from __future__ import annotations

from incidentio_operator.api.alertsource import AlertSourceRef
from incidentio_operator.decisions.connection_test import TestResult, failure_result
from incidentio_operator.incidentio.alertsources import AlertSource
from incidentio_operator.incidentio.errors import Forbidden, IncidentIoError, NotFound, Unauthorized

TOKEN_REFUSED = "AlertSourceTokenRefused"


def check_alert_source(source: AlertSource, wanted: AlertSourceRef) -> TestResult | None:
    """A failed result when the source is not an HTTP source (alert events go to HTTP sources only:
    AlertSourceV2.source_type in the reference spec); None when it is."""
    if source.is_http:
        return None
    return TestResult(
        False,
        "AlertSourceNotHTTP",
        f"alert source {wanted.config_id} ({source.name!r}) is of type {source.source_type!r}, not 'http': "
        "alert events go to an HTTP alert source; set spec.alertSource.configId to one",
    )


def alert_source_failure(error: IncidentIoError, wanted: AlertSourceRef) -> TestResult:
    """The result of GET /v2/alert_sources/{id} answered with an error (the API key's call)."""
    if isinstance(error, NotFound):
        return TestResult(
            False,
            "AlertSourceNotFound",
            f"incident.io has no alert source {wanted.config_id} (GET /v2/alert_sources: HTTP 404); "
            "check spec.alertSource.configId",
        )
    result = failure_result(error)
    if isinstance(error, Unauthorized | Forbidden):
        return TestResult(False, result.reason, f"{result.message}: the API key (spec.apiKeySecretRef) was refused")
    return result


def token_refused(wanted: AlertSourceRef, status: int | None) -> TestResult:
    """incident.io refused the alert source's token (on an alert event or the test event)."""
    code = f"HTTP {status}" if status else "refused"
    return TestResult(
        False,
        TOKEN_REFUSED,
        f"incident.io refused the token of alert source {wanted.config_id} ({code}); put the alert source's "
        f"token in {wanted.token} (spec.alertSource.tokenSecretRef)",
    )


def event_failure(error: IncidentIoError, wanted: AlertSourceRef) -> TestResult:
    """The result of a test alert event answered with an error."""
    if isinstance(error, Unauthorized | Forbidden):
        return token_refused(wanted, error.status)
    if isinstance(error, NotFound):
        return TestResult(
            False,
            "AlertSourceNotFound",
            f"incident.io has no HTTP alert source {wanted.config_id} (HTTP 404 on the test event); "
            "check spec.alertSource.configId",
        )
    return failure_result(error)


def verified(wanted: AlertSourceRef, source: AlertSource | None, test_key: str = "") -> TestResult:
    """Success, saying what was checked: the token is there; the source is an HTTP source (with an API key);
    the test event went out, firing then resolved, under its deduplication key."""
    checked = f"alert source token present in {wanted.token}"
    if source is not None:
        checked += f"; alert source {wanted.config_id} ({source.name!r}) is an HTTP source"
    if test_key:
        message = f"Success! Test alert event sent, firing then resolved (deduplication key {test_key}); {checked}"
    else:
        message = f"Verified: {checked}"
    return TestResult(True, "Verified", message, identity_name=source.name if source is not None else "")
