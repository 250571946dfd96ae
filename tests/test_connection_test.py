"""The connection test's judgements: is closedStatusId a closed status, and do the severity names resolve."""

from __future__ import annotations

from typing import Any

import pytest

from incidentio_operator.api import Destination, DestinationSpec
from incidentio_operator.decisions.connection_test import check_closed_status, resolve_severities, resolve_severity
from incidentio_operator.incidentio import IncidentStatus, Severity

from .factories import destination_body

TRIAGE = IncidentStatus("01TRIAGE", "Triage", "triage", 0, None)
INVESTIGATING = IncidentStatus("01INVESTIGATING", "Investigating", "live", 1, None)
CLOSED = IncidentStatus("01CLOSED", "Closed", "closed", 5, None)
DECLINED = IncidentStatus("01DECLINED", "Declined", "declined", 6, None)
STATUSES = [TRIAGE, INVESTIGATING, CLOSED, DECLINED]

MINOR = Severity("01MINOR", "Minor", 1, None)
MAJOR = Severity("01MAJOR", "Major", 2, None)
CRITICAL = Severity("01CRITICAL", "Critical", 3, None)
SEVERITIES = [CRITICAL, MINOR, MAJOR]


def _spec(severity: dict[str, Any]) -> DestinationSpec:
    spec = Destination.from_body(
        destination_body(spec={"apiKeySecretRef": {"name": "k"}, "incident": {"severity": severity}})
    ).spec
    assert spec is not None
    return spec


# --- check_closed_status -----------------------------------------------------------------------------------


def test_no_closed_status_configured_is_not_a_problem() -> None:
    assert check_closed_status("", STATUSES) == (None, "")


def test_closed_status_of_category_closed_is_accepted() -> None:
    assert check_closed_status("01CLOSED", STATUSES) == (CLOSED, "")


def test_closed_status_of_another_category_is_refused_with_its_name_and_category() -> None:
    status, problem = check_closed_status("01INVESTIGATING", STATUSES)

    assert status is None
    assert "01INVESTIGATING" in problem
    assert "'Investigating'" in problem
    assert "'live'" in problem


def test_unknown_closed_status_is_refused_listing_the_accounts_closed_statuses() -> None:
    status, problem = check_closed_status("01NOPE", STATUSES)

    assert status is None
    assert "01NOPE is not an incident status" in problem
    assert "Closed (01CLOSED)" in problem
    assert "Triage" not in problem, "only statuses of category closed are offered"


def test_unknown_closed_status_in_an_account_without_closed_statuses_says_none() -> None:
    _, problem = check_closed_status("01NOPE", [TRIAGE])

    assert problem.endswith("closed statuses: none")


# --- resolve_severity --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("Critical", "01CRITICAL"),
        ("critical", "01CRITICAL"),
        ("MAJOR", "01MAJOR"),
        ("01MINOR", "01MINOR"),
        ("Sev1", None),
        ("", None),
    ],
    ids=["name", "name-any-case", "name-upper-case", "id", "unknown", "empty"],
)
def test_severity_resolves_by_id_or_by_name_in_any_case(wanted: str, expected: str | None) -> None:
    assert resolve_severity(wanted, SEVERITIES) == expected


# --- resolve_severities ------------------------------------------------------------------------------------


def test_design_example_severities_resolve_to_ids() -> None:
    spec = _spec({"default": "Minor", "map": {"critical": "Critical", "warning": "Major", "info": "01MINOR"}})

    assert resolve_severities(spec, SEVERITIES) == (
        {"default": "01MINOR", "map": {"critical": "01CRITICAL", "warning": "01MAJOR", "info": "01MINOR"}},
        "",
    )


def test_no_severity_configured_resolves_to_nothing() -> None:
    assert resolve_severities(_spec({}), SEVERITIES) == ({}, "")


def test_default_only() -> None:
    assert resolve_severities(_spec({"default": "major"}), SEVERITIES) == ({"default": "01MAJOR"}, "")


def test_map_only() -> None:
    assert resolve_severities(_spec({"map": {"critical": "Critical"}}), SEVERITIES) == (
        {"map": {"critical": "01CRITICAL"}},
        "",
    )


def test_unknown_default_names_the_field_and_lists_known_severities_by_rank() -> None:
    resolved, problem = resolve_severities(_spec({"default": "Sev4"}), SEVERITIES)

    assert resolved == {}
    assert "'Sev4'" in problem
    assert "spec.incident.severity.default" in problem
    assert problem.endswith("known severities: Minor, Major, Critical")


def test_unknown_mapped_severity_names_its_field() -> None:
    resolved, problem = resolve_severities(_spec({"default": "Minor", "map": {"warning": "Sev2"}}), SEVERITIES)

    assert resolved == {}
    assert "'Sev2'" in problem
    assert "spec.incident.severity.map.warning" in problem


def test_account_without_severities_says_none_are_known() -> None:
    _, problem = resolve_severities(_spec({"default": "Minor"}), [])

    assert problem.endswith("known severities: none")
