"""Judging a destination's connection test: the roles it needs, its closed status, its severities, its failures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from incidentio_operator.api import DestinationSpec
from incidentio_operator.incidentio.errors import Forbidden, IncidentIoError, Unauthorized, Unreachable
from incidentio_operator.incidentio.models import Identity, IncidentStatus, Severity

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
    # status.customFieldIds (decisions.customfields.resolve_custom_fields).
    custom_field_ids: Mapping[str, object] = field(default_factory=dict)


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


def failure_result(error: IncidentIoError) -> TestResult:
    """The result of a test that incident.io answered with an error."""
    if isinstance(error, Unauthorized):
        return TestResult(False, "Unauthorized", "HTTP 401: Unauthorized")
    if isinstance(error, Forbidden):
        detail = "; ".join(error.messages)
        return TestResult(False, "Forbidden", f"HTTP 403: Forbidden ({detail})" if detail else "HTTP 403: Forbidden")
    if isinstance(error, Unreachable):
        return TestResult(False, "Unreachable", str(error), retryable=True)
    return TestResult(False, "ConnectionTestFailed", str(error), retryable=error.retryable)


def missing_roles(identity: Identity) -> TestResult | None:
    """A failed result naming the roles the API key lacks, or None when it has every one the operator needs."""
    missing = [role for role in REQUIRED_ROLES if role not in identity.roles]
    if not missing:
        return None
    needs = "; ".join(f"the API key lacks the role {role}, {REQUIRED_ROLES[role]}" for role in missing)
    return TestResult(False, "Forbidden", f"HTTP 403: Forbidden ({needs})", identity.name, identity.roles)
