"""The incident incident.io receives: deterministic idempotency key, name, summary, severity and the request."""

from __future__ import annotations

from typing import Any

import pytest

from incidentio_operator.api import DataAlert, DataAlertSpec, Destination, DestinationSpec, ObjectRef
from incidentio_operator.decisions.payloads import (
    NAME_LIMIT,
    SUMMARY_LIMIT,
    create_request,
    idempotency_key,
    incident_name,
    incident_summary,
    severity_id,
)

from .factories import NAMESPACE, alert_body, destination_body

ALERT_REF = ObjectRef(NAMESPACE, "orders-column-removed-7f3a")
DESTINATION = ObjectRef(NAMESPACE, "incidentio-data-platform")
RULES = ("critical-alerts", "production-breaking-changes")


def _alert(**overrides: Any) -> DataAlertSpec:
    spec = DataAlert.from_body(alert_body(**overrides)).spec
    assert spec is not None
    return spec


def _destination(**incident: Any) -> DestinationSpec:
    spec = Destination.from_body(
        destination_body(spec={"apiKeySecretRef": {"name": "incidentio-api-key"}, "incident": incident})
    ).spec
    assert spec is not None
    return spec


# --- idempotency_key ---------------------------------------------------------------------------------------


def test_idempotency_key_is_the_same_for_the_same_alert_destination_and_epoch() -> None:
    same_destination = ObjectRef(NAMESPACE, DESTINATION.name)

    assert idempotency_key("uid-1", DESTINATION, 1) == idempotency_key("uid-1", same_destination, 1)


def test_idempotency_key_does_not_depend_on_the_process() -> None:
    """A restarted operator must re-send the key the previous process sent: no salted hash, no randomness."""
    assert idempotency_key("3f0c7a52-alert-uid", DESTINATION, 1) == "armor-3b58423897499965d789ec063d5ca0a880d98465"


@pytest.mark.parametrize(
    ("uid", "destination", "epoch"),
    [
        ("uid-2", DESTINATION, 1),
        ("uid-1", ObjectRef(NAMESPACE, "pager"), 1),
        ("uid-1", ObjectRef("other-team", DESTINATION.name), 1),
        ("uid-1", DESTINATION, 2),
    ],
    ids=["another-alert", "another-destination", "same-name-other-namespace", "next-epoch"],
)
def test_idempotency_key_differs_when_any_part_of_its_identity_differs(
    uid: str, destination: ObjectRef, epoch: int
) -> None:
    assert idempotency_key(uid, destination, epoch) != idempotency_key("uid-1", DESTINATION, 1)


def test_idempotency_key_is_short_and_reveals_nothing_of_the_alert() -> None:
    key = idempotency_key("3f0c7a52-alert-uid", DESTINATION, 1)

    assert key.startswith("armor-")
    assert len(key) <= 64
    assert "3f0c7a52" not in key
    assert DESTINATION.name not in key


# --- incident_name -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "title", "name"),
    [
        ("[AnomalyArmor]", "Column customer_id removed", "[AnomalyArmor] Column customer_id removed"),
        ("", "Column customer_id removed", "Column customer_id removed"),
        ("[Data] ", "Orders late", "[Data]  Orders late"),
    ],
)
def test_incident_name_is_the_prefix_and_the_title(prefix: str, title: str, name: str) -> None:
    assert incident_name(prefix, title) == name


# --- incident_summary --------------------------------------------------------------------------------------


def test_summary_opens_with_the_description_and_names_everything_the_design_asks_for() -> None:
    summary = incident_summary(_alert(), ALERT_REF, RULES)
    lines = summary.splitlines()

    assert lines[0] == "The column customer_id disappeared from sales.orders."
    assert "Source: AnomalyArmor" in lines
    assert "critical-alerts" in summary and "production-breaking-changes" in summary
    assert "schema_change" in summary
    assert "6c1e0f4a" in summary
    assert "snowflake.prod_db.sales.orders" in summary
    assert f"kubectl -n {NAMESPACE} get dataalert orders-column-removed-7f3a" in summary


def test_summary_names_the_schema_changes_and_the_detectors_alert_id_and_time() -> None:
    changes = [
        {"type": "column_removed", "column": "customer_id"},
        {"type": "column_type_changed", "column": "amount", "fromType": "NUMBER", "toType": "VARCHAR"},
    ]

    summary = incident_summary(_alert(changes=changes), ALERT_REF, RULES)

    assert "column_removed customer_id" in summary
    assert "column_type_changed amount (NUMBER -> VARCHAR)" in summary
    assert "alert_abc123" in summary
    assert "2026-11-26T10:00:00Z" in summary


def test_summary_without_description_starts_with_the_source() -> None:
    summary = incident_summary(_alert(description=""), ALERT_REF, RULES)

    assert summary.splitlines()[0] == "Source: AnomalyArmor"


def test_summary_names_a_custom_source() -> None:
    assert "Source: Monte Carlo" in incident_summary(_alert(source="Monte Carlo"), ALERT_REF, RULES)


def test_summary_carries_only_the_fields_it_is_built_from() -> None:
    """The summary is built from named fields only: whatever else a detector puts in the spec stays out."""
    spec = _alert(
        extra={"sampleRows": [{"customer_id": 4242, "email": "jane@example.com"}]},
        connection="snowflake://svc:hunter2@acct",
    )

    summary = incident_summary(spec, ALERT_REF, RULES)

    for secret in ("jane@example.com", "4242", "hunter2", "snowflake://"):
        assert secret not in summary


def test_summary_of_a_long_description_stays_within_the_limit() -> None:
    summary = incident_summary(_alert(description="x" * 10_000), ALERT_REF, RULES)

    assert len(summary) <= 4000
    description, _, facts = summary.partition("\n\n")
    assert description.endswith("…")
    assert facts.endswith(f"get dataalert {ALERT_REF.name}")


def test_summary_of_the_longest_description_the_crd_allows_still_names_rules_source_and_link() -> None:
    summary = incident_summary(_alert(description="x" * 4000), ALERT_REF, RULES)

    assert len(summary) <= 4000
    assert "Source: AnomalyArmor" in summary
    assert "production-breaking-changes" in summary
    assert "snowflake.prod_db.sales.orders" in summary
    assert f"kubectl -n {NAMESPACE} get dataalert orders-column-removed-7f3a" in summary


def test_summary_of_80_changes_and_a_long_description_keeps_the_description_and_counts_the_changes_left_out() -> None:
    """Issue 11 §7: the description first, the list of changes shortened with "… and N more", within the limit."""
    description = "The upstream export rewrote the table. " * 36  # ~1,400 characters
    changes = [{"type": "column_removed", "column": f"legacy_column_with_a_long_name_{n:02d}"} for n in range(80)]
    spec = _alert(description=description, changes=changes)

    summary = incident_summary(spec, ALERT_REF, RULES)

    assert len(summary) <= SUMMARY_LIMIT
    assert summary.startswith(description.strip())
    line = next(line for line in summary.splitlines() if line.startswith("Changes: "))
    shown = line.count("column_removed legacy_column")
    left_out = int(line.rsplit("and ", 1)[1].split(" more")[0])
    assert 0 < shown < 80
    assert shown + left_out == 80
    assert f"kubectl -n {NAMESPACE} get dataalert {ALERT_REF.name}" in summary


@pytest.mark.parametrize("count", [1, 5, 30, 200])
def test_summary_of_any_number_of_changes_stays_within_the_limit_and_lists_them_all_when_they_fit(count: int) -> None:
    change = {"type": "column_type_changed", "fromType": "INT", "toType": "TEXT"}
    changes = [{**change, "column": f"c{n}"} for n in range(count)]
    summary = incident_summary(_alert(description="short", changes=changes), ALERT_REF, RULES)

    assert len(summary) <= SUMMARY_LIMIT
    line = next(line for line in summary.splitlines() if line.startswith("Changes: "))
    if "more" not in line:
        assert line.count("column_type_changed") == count


def test_incident_name_of_a_very_long_title_is_cut_to_the_limit_with_an_ellipsis() -> None:
    name = incident_name("[AnomalyArmor]", "t" * 1000)

    assert len(name) == NAME_LIMIT
    assert name.startswith("[AnomalyArmor] ttt")
    assert name.endswith("…")


# --- severity_id -------------------------------------------------------------------------------------------

RESOLVED = {"default": "01MINOR", "map": {"critical": "01CRITICAL", "warning": "01MAJOR"}}


@pytest.mark.parametrize(
    ("alert_severity", "resolved", "expected"),
    [
        ("critical", RESOLVED, "01CRITICAL"),
        ("warning", RESOLVED, "01MAJOR"),
        ("info", RESOLVED, "01MINOR"),
        ("critical", {"default": "01MINOR"}, "01MINOR"),
        ("critical", {"map": {"warning": "01MAJOR"}}, None),
        ("critical", {}, None),
    ],
    ids=["mapped", "mapped-other", "unmapped-falls-back-to-default", "default-only", "unmapped-no-default", "none"],
)
def test_severity_id_uses_the_map_then_the_default(
    alert_severity: str, resolved: dict[str, Any], expected: str | None
) -> None:
    assert severity_id(alert_severity, resolved) == expected


# --- create_request ----------------------------------------------------------------------------------------


def test_create_request_carries_the_destinations_settings_and_the_key() -> None:
    destination = _destination(namePrefix="[Data]", visibility="private", mode="test", incidentTypeId="01TYPE")

    request = create_request(_alert(), ALERT_REF, destination, RESOLVED, RULES, "armor-key")

    assert request.idempotency_key == "armor-key"
    assert request.name == "[Data] Column customer_id removed from orders"
    assert request.summary == incident_summary(_alert(), ALERT_REF, RULES)
    assert request.mode == "test"
    assert request.visibility == "private"
    assert request.severity_id == "01CRITICAL"
    assert request.incident_type_id == "01TYPE"


def test_create_request_with_defaults_sends_no_severity_and_no_incident_type() -> None:
    request = create_request(_alert(), ALERT_REF, _destination(), {}, RULES, "armor-key")

    assert request.name == "[AnomalyArmor] Column customer_id removed from orders"
    assert (request.mode, request.visibility) == ("standard", "public")
    body = request.to_json()
    assert "severity_id" not in body
    assert "incident_type_id" not in body
    assert body["idempotency_key"] == "armor-key"
