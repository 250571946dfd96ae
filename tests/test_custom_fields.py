"""Custom fields: parsing spec.incident.customFields, resolving it against incident.io's fields, the alert's values."""

from __future__ import annotations

from typing import Any

import pytest

from incidentio_operator.api import DataAlert, Destination, SpecError
from incidentio_operator.api.customfields import CustomFieldSource, parse_custom_fields
from incidentio_operator.controller.connection_test import run_connection_test
from incidentio_operator.decisions.customfields import field_values, resolve_custom_fields
from incidentio_operator.incidentio import Account, ApiKey, IncidentIoClient
from incidentio_operator.incidentio.customfields import CustomField, CustomFieldOption
from incidentio_operator.standins.simulator import (
    CUSTOM_FIELD_DATA_ASSET_ID,
    CUSTOM_FIELD_TEAM_ID,
    DEFAULT_ROLES,
    ApiKeyConfig,
    Simulator,
    SimulatorConfig,
)

from .factories import alert_body, destination_body

TEAM = CustomField("01TEAM", "Affected Team", "single_select", "")
ENVIRONMENTS = CustomField("01ENV", "Environments", "multi_select", "")
ASSET = CustomField("01ASSET", "Data Asset", "text", "")
RUNBOOK = CustomField("01RUNBOOK", "Runbook", "link", "")
ROWS = CustomField("01ROWS", "Affected Rows", "numeric", "")
FIELDS = [TEAM, ENVIRONMENTS, ASSET, RUNBOOK, ROWS]
OPTIONS = {
    TEAM.id: [CustomFieldOption("01PAY", TEAM.id, "Payments", 10), CustomFieldOption("01GRO", TEAM.id, "Growth", 20)],
    ENVIRONMENTS.id: [CustomFieldOption("01PROD", ENVIRONMENTS.id, "production", 10)],
}
ALERT = DataAlert.from_body(alert_body(labels={"team": "payments"}))


def sources(*entries: dict[str, Any]) -> tuple[CustomFieldSource, ...]:
    return parse_custom_fields(list(entries))


# --- parsing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        ({"field": "Team"}, "spec.incident.customFields[0]"),
        ({"field": "Team", "value": "x", "from": "severity"}, "spec.incident.customFields[0]"),
        ({"field": "Team", "from": "colour"}, "spec.incident.customFields[0].from"),
        ({"field": "Team", "from": "label"}, "spec.incident.customFields[0].label"),
        ({"field": "Team", "value": "x", "label": "team"}, "spec.incident.customFields[0].label"),
        ({"field": " ", "value": "x"}, "spec.incident.customFields[0].field"),
    ],
)
def test_an_entry_that_does_not_say_where_its_value_comes_from_is_refused_naming_it(
    entry: dict[str, Any], where: str
) -> None:
    with pytest.raises(SpecError) as raised:
        sources(entry)
    assert raised.value.field == where


def test_naming_a_field_twice_is_refused_at_the_second_entry() -> None:
    with pytest.raises(SpecError) as raised:
        sources({"field": "Team", "value": "Payments"}, {"field": "Team", "from": "source"})
    assert raised.value.field == "spec.incident.customFields[1].field"


# --- resolving against incident.io's fields ----------------------------------------------------------------


def test_fields_resolve_by_name_or_id_with_their_type_and_the_options_a_value_can_take() -> None:
    resolved, reason, message = resolve_custom_fields(
        sources(
            {"field": "affected team", "from": "label", "label": "team"},
            {"field": "01ENV", "value": "production"},
            {"field": "Data Asset", "from": "assetQualifiedName"},
            {"field": "Affected Rows", "from": "externalId"},
        ),
        FIELDS,
        OPTIONS,
    )
    assert (reason, message) == ("", "")
    assert resolved == {
        "affected team": {
            "id": "01TEAM",
            "name": "Affected Team",
            "type": "single_select",
            "options": {"Payments": "01PAY", "Growth": "01GRO"},
        },
        "01ENV": {"id": "01ENV", "name": "Environments", "type": "multi_select", "options": {"production": "01PROD"}},
        "Data Asset": {"id": "01ASSET", "name": "Data Asset", "type": "text"},
        "Affected Rows": {"id": "01ROWS", "name": "Affected Rows", "type": "numeric"},
    }


def test_an_unknown_field_names_its_entry_and_the_fields_that_exist() -> None:
    _, reason, message = resolve_custom_fields(
        sources({"field": "Team", "value": "x"}, {"field": "Squad", "value": "x"}), FIELDS, OPTIONS
    )
    assert reason == "CustomFieldNotFound"
    assert "'Team' (spec.incident.customFields[0]) does not exist" in message
    assert "Affected Team (single_select)" in message and "Affected Rows (numeric)" in message


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"field": "Affected Team", "value": "Finance"}, "is not one of its options (Payments, Growth)"),
        ({"field": "Affected Rows", "from": "severity"}, "from severity never gives a numeric value"),
        ({"field": "Runbook", "from": "label", "label": "runbook"}, "never gives a link value"),
        ({"field": "Runbook", "value": "wiki/page"}, "is not an http(s) link"),
        ({"field": "Affected Rows", "value": "many"}, "is not a number"),
    ],
)
def test_a_value_that_does_not_fit_the_fields_type_is_refused_naming_the_entry(
    entry: dict[str, Any], problem: str
) -> None:
    _, reason, message = resolve_custom_fields(sources({"field": "Data Asset", "value": "x"}, entry), FIELDS, OPTIONS)
    assert reason == "InvalidCustomField"
    assert message.startswith("spec.incident.customFields[1] (")
    assert problem in message


# --- the alert's values ------------------------------------------------------------------------------------


def test_an_alert_gives_each_field_a_value_of_its_type() -> None:
    entries = sources(
        {"field": "Affected Team", "from": "label", "label": "team"},
        {"field": "Data Asset", "from": "assetQualifiedName"},
        {"field": "Environments", "from": "assetEnvironment"},
    )
    resolved, _, _ = resolve_custom_fields(entries, FIELDS, OPTIONS)
    assert ALERT.spec is not None
    values = field_values(entries, resolved, ALERT.spec, ALERT.labels)
    assert [entry.to_json() for entry in values.entries] == [
        {"custom_field_id": "01TEAM", "values": [{"value_option_id": "01PAY"}]},
        {"custom_field_id": "01ASSET", "values": [{"value_text": "snowflake.prod_db.sales.orders"}]},
        {"custom_field_id": "01ENV", "values": [{"value_option_id": "01PROD"}]},
    ]
    assert values.managed == ("01TEAM", "01ASSET", "01ENV") and values.notes == ()


def test_a_value_with_no_matching_option_leaves_the_field_unset_and_says_why() -> None:
    entries = sources({"field": "Affected Team", "from": "label", "label": "team"})
    resolved, _, _ = resolve_custom_fields(entries, FIELDS, OPTIONS)
    alert = DataAlert.from_body(alert_body(labels={"team": "finance"}))
    assert alert.spec is not None
    values = field_values(entries, resolved, alert.spec, alert.labels)
    assert values.entries == () and values.managed == ("01TEAM",)
    (note,) = values.notes
    assert note.startswith("custom field 'Affected Team' left unset: 'finance' (from label team)")


def test_a_missing_label_leaves_the_field_unset_without_a_note() -> None:
    entries = sources({"field": "Affected Team", "from": "label", "label": "team"})
    resolved, _, _ = resolve_custom_fields(entries, FIELDS, OPTIONS)
    alert = DataAlert.from_body(alert_body(labels={}))
    assert alert.spec is not None
    values = field_values(entries, resolved, alert.spec, alert.labels)
    assert (values.entries, values.notes) == ((), ())


# --- the connection test, against the simulator -----------------------------------------------------------


async def test_the_connection_test_resolves_custom_fields_through_the_custom_fields_api() -> None:
    config = SimulatorConfig(keys={"key": ApiKeyConfig("ops", DEFAULT_ROLES)}, rate_limit_per_minute=None)
    entries = [
        {"field": "Affected Team", "from": "label", "label": "team"},
        {"field": "Data Asset", "from": "assetTable"},
    ]
    spec = Destination.from_body(
        destination_body(spec={"apiKeySecretRef": {"name": "k"}, "incident": {"customFields": entries}})
    ).spec
    assert spec is not None
    async with Simulator(config) as sim, IncidentIoClient() as client:
        account = Account(base_url=sim.url, api_key=ApiKey("key"))
        result = await run_connection_test(client, account, spec, create_test_incident=False, test_key="t")
        operations = [request.operation for request in sim.requests]
    assert result.ok, result.message
    assert result.custom_field_ids["Affected Team"]["id"] == CUSTOM_FIELD_TEAM_ID  # type: ignore[index]
    assert result.custom_field_ids["Data Asset"]["id"] == CUSTOM_FIELD_DATA_ASSET_ID  # type: ignore[index]
    assert operations.count("list_custom_fields") == 1
    assert operations.count("list_custom_field_options") == 1, "only the select field's options are read"
