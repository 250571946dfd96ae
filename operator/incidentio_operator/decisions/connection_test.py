"""The destination's connection test: which incident.io calls it makes and how their answers are judged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from incidentio_operator.api import DestinationSpec
from incidentio_operator.incidentio import (
    Account,
    CreateIncidentRequest,
    EditIncidentRequest,
    Forbidden,
    IncidentIoClient,
    IncidentIoError,
    IncidentStatus,
    Severity,
    Unauthorized,
    Unreachable,
)

# Roles the operator's work needs, as incident.io's identity endpoint names them.
REQUIRED_ROLES = {
    "incident_creator": "needed to create incidents",
    "incident_editor": "needed to close incidents",
}


@dataclass(frozen=True)
class TestResult:
    ok: bool
    reason: str
    message: str
    identity_name: str = ""
    roles: tuple[str, ...] = ()
    closed_status: IncidentStatus | None = None
    severity_ids: Mapping[str, object] = field(default_factory=dict)
    incident_reference: str = ""
    retryable: bool = False


def check_closed_status(closed_status_id: str, statuses: Sequence[IncidentStatus]) -> tuple[IncidentStatus | None, str]:
    """The configured closed status, or a message naming what is wrong with it."""
    if not closed_status_id:
        return None, ""
    for status in statuses:
        if status.id == closed_status_id:
            if status.category != "closed":
                return None, (
                    f"closedStatusId {closed_status_id} is the status {status.name!r} of category "
                    f"{status.category!r}, not 'closed'; use the ID of a status of category closed"
                )
            return status, ""
    closed = ", ".join(f"{s.name} ({s.id})" for s in statuses if s.category == "closed") or "none"
    return None, (
        f"closedStatusId {closed_status_id} is not an incident status of this incident.io account; "
        f"closed statuses: {closed}"
    )


def resolve_severity(wanted: str, severities: Sequence[Severity]) -> str | None:
    for severity in severities:
        if wanted == severity.id or wanted.lower() == severity.name.lower():
            return severity.id
    return None


def resolve_severities(spec: DestinationSpec, severities: Sequence[Severity]) -> tuple[dict[str, object], str]:
    """Severity names or IDs of the spec resolved to IDs, or a message naming the one that does not resolve."""
    mapping = spec.incident.severity
    resolved: dict[str, object] = {}
    known = ", ".join(s.name for s in sorted(severities, key=lambda s: s.rank)) or "none"
    if mapping.default:
        default = resolve_severity(mapping.default, severities)
        if default is None:
            return {}, (
                f"severity {mapping.default!r} (spec.incident.severity.default) does not exist in incident.io; "
                f"known severities: {known}"
            )
        resolved["default"] = default
    by_alert: dict[str, str] = {}
    for alert_severity, wanted in sorted(mapping.by_alert_severity.items()):
        severity_id = resolve_severity(wanted, severities)
        if severity_id is None:
            return {}, (
                f"severity {wanted!r} (spec.incident.severity.map.{alert_severity}) does not exist in incident.io; "
                f"known severities: {known}"
            )
        by_alert[alert_severity] = severity_id
    if by_alert:
        resolved["map"] = by_alert
    return resolved, ""


def _failure(error: IncidentIoError) -> TestResult:
    if isinstance(error, Unauthorized):
        return TestResult(False, "Unauthorized", "HTTP 401: Unauthorized")
    if isinstance(error, Forbidden):
        detail = "; ".join(error.messages)
        return TestResult(False, "Forbidden", f"HTTP 403: Forbidden ({detail})" if detail else "HTTP 403: Forbidden")
    if isinstance(error, Unreachable):
        return TestResult(False, "Unreachable", str(error), retryable=True)
    return TestResult(False, "ConnectionTestFailed", str(error), retryable=error.retryable)


async def run_connection_test(
    client: IncidentIoClient,
    account: Account,
    spec: DestinationSpec,
    *,
    create_test_incident: bool,
    test_key: str,
) -> TestResult:
    """``Verify``: identity, statuses, severities; ``CreateTestIncident``: also a test incident, closed again."""
    try:
        identity = await client.identity(account)
        missing = [role for role in REQUIRED_ROLES if role not in identity.roles]
        if missing:
            needs = "; ".join(f"the API key lacks the role {role}, {REQUIRED_ROLES[role]}" for role in missing)
            return TestResult(False, "Forbidden", f"HTTP 403: Forbidden ({needs})", identity.name, identity.roles)
        statuses = await client.list_incident_statuses(account)
        closed_status, problem = check_closed_status(spec.closed_status_id, statuses)
        if problem:
            return TestResult(False, "InvalidClosedStatus", problem, identity.name, identity.roles)
        severities = await client.list_severities(account)
        severity_ids, problem = resolve_severities(spec, severities)
        if problem:
            return TestResult(False, "SeverityNotFound", problem, identity.name, identity.roles, closed_status)
        reference = ""
        message = f"Verified: API key {identity.name!r} with roles {', '.join(identity.roles)}"
        if create_test_incident:
            default_severity = severity_ids.get("default")
            incident = await client.create_incident(
                account,
                CreateIncidentRequest(
                    idempotency_key=test_key,
                    name=f"{spec.incident.name_prefix} Connection test".strip(),
                    summary="Connection test from incidentio-operator. Safe to ignore; closed automatically.",
                    mode="test",
                    visibility=spec.incident.visibility,
                    severity_id=str(default_severity) if default_severity else None,
                ),
            )
            reference = incident.reference
            if closed_status is not None:
                await client.edit_incident(
                    account,
                    incident.id,
                    EditIncidentRequest(incident_status_id=closed_status.id, notify_incident_channel=False),
                )
            message = f"Success! Incident created: {incident.reference}"
    except IncidentIoError as error:
        return _failure(error)
    return TestResult(
        True,
        "Verified",
        message,
        identity.name,
        identity.roles,
        closed_status,
        severity_ids,
        reference,
    )
