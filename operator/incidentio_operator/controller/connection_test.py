"""The destination's connection test as it runs: the incident.io calls it makes, judged by decisions.connection_test."""

from __future__ import annotations

from typing import Any

from incidentio_operator.api import DestinationSpec
from incidentio_operator.decisions.connection_test import (
    TestResult,
    check_closed_status,
    failure_result,
    missing_roles,
    resolve_severities,
)
from incidentio_operator.decisions.customfields import match_field, resolve_custom_fields
from incidentio_operator.incidentio import (
    Account,
    CreateIncidentRequest,
    EditIncidentRequest,
    IncidentIoClient,
    IncidentIoError,
)


async def run_connection_test(
    client: IncidentIoClient,
    account: Account,
    spec: DestinationSpec,
    *,
    create_test_incident: bool,
    test_key: str,
) -> TestResult:
    """``Verify``: identity, statuses, severities, custom fields; ``CreateTestIncident``: also a test incident.

    The test incident is closed again at once.
    """
    try:
        identity = await client.identity(account)
        lacking = missing_roles(identity)
        if lacking is not None:
            return lacking
        statuses = await client.list_incident_statuses(account)
        closed_status, problem = check_closed_status(spec.closed_status_id, statuses)
        if problem:
            return TestResult(False, "InvalidClosedStatus", problem, identity.name, identity.roles)
        severities = await client.list_severities(account)
        severity_ids, problem = resolve_severities(spec, severities)
        if problem:
            return TestResult(False, "SeverityNotFound", problem, identity.name, identity.roles, closed_status)
        custom_field_ids, reason, problem = await _resolve_custom_fields(client, account, spec)
        if problem:
            return TestResult(False, reason, problem, identity.name, identity.roles, closed_status, severity_ids)
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
        return failure_result(error)
    return TestResult(
        True,
        "Verified",
        message,
        identity.name,
        identity.roles,
        closed_status,
        severity_ids,
        reference,
        custom_field_ids=custom_field_ids,
    )


async def _resolve_custom_fields(
    client: IncidentIoClient, account: Account, spec: DestinationSpec
) -> tuple[dict[str, Any], str, str]:
    """spec.incident.customFields resolved (GET /v2/custom_fields, and each select field's options), or why not.

    No call at all for a destination that sets no custom fields.
    """
    sources = spec.incident.custom_fields
    if not sources:
        return {}, "", ""
    fields = await client.list_custom_fields(account)
    named = [match_field(source.field, fields) for source in sources]
    options = {
        field.id: await client.list_custom_field_options(account, field.id)
        for field in named
        if field is not None and field.takes_options
    }
    return resolve_custom_fields(sources, fields, options)
