"""Models against the contract: the spec's own examples parse, additions are tolerated, payloads validate."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from incidentio_operator.incidentio import (
    TERMINAL_STATUS_CATEGORIES,
    AlertEvent,
    AlertEventAccepted,
    AlertSource,
    AlertSourceHeartbeat,
    CreateIncidentRequest,
    CustomField,
    CustomFieldEntryPayload,
    CustomFieldOption,
    CustomFieldValuePayload,
    EditIncidentRequest,
    Identity,
    Incident,
    IncidentStatus,
    Severity,
)
from incidentio_operator.incidentio.parsing import ResponseShapeError, list_of
from incidentio_operator.standins.simulator.spec import load_subset, validator


def example(path: str, method: str) -> dict[str, Any]:
    operation = load_subset()["paths"][path][method]
    body: dict[str, Any] = operation["responses"]["200"]["content"]["application/json"]["example"]
    return copy.deepcopy(body)


def test_identity_from_the_spec_example() -> None:
    identity = Identity.from_json(example("/v1/identity", "get"))

    assert identity == Identity(
        name="Alertmanager token", roles=("viewer",), dashboard_url="https://app.incident.io/my-org"
    )


def test_incident_statuses_from_the_spec_example() -> None:
    statuses = list_of(example("/v1/incident_statuses", "get"), "incident_statuses", IncidentStatus.from_json)

    assert [(s.id, s.name, s.category, s.rank) for s in statuses] == [
        ("01FCNDV6P870EA6S7TK1DSYD5H", "Closed", "triage", 4)
    ]
    assert not statuses[0].is_closed


def test_severities_from_the_spec_example() -> None:
    severities = list_of(example("/v1/severities", "get"), "severities", Severity.from_json)

    assert severities == [
        Severity(id="01FCNDV6P870EA6S7TK1DSYDG0", name="Minor", rank=1, description="Issues with **low impact**.")
    ]


@pytest.mark.parametrize(
    ("path", "method"),
    [("/v2/incidents", "post"), ("/v2/incidents/{id}", "get"), ("/v2/incidents/{id}/actions/edit", "post")],
)
def test_incident_from_each_spec_example(path: str, method: str) -> None:
    body = example(path, method)
    raw = body["incident"]

    incident = Incident.from_json(body)

    assert (incident.id, incident.reference, incident.name) == (raw["id"], raw["reference"], raw["name"])
    assert (incident.mode, incident.visibility) == (raw["mode"], raw["visibility"])
    assert incident.permalink == raw["permalink"]
    assert incident.incident_status.id == raw["incident_status"]["id"]
    assert incident.incident_status.category == raw["incident_status"]["category"]
    assert incident.severity is not None and incident.severity.id == raw["severity"]["id"]
    assert incident.created_at == raw["created_at"]


def test_unknown_fields_and_enum_values_do_not_break_parsing() -> None:
    body = example("/v2/incidents/{id}", "get")
    body["brand_new_top_level"] = {"x": 1}
    body["incident"]["brand_new_field"] = [1, 2, 3]
    body["incident"]["mode"] = "drill"
    body["incident"]["visibility"] = "internal"
    body["incident"]["incident_status"]["category"] = "snoozed"
    body["incident"]["incident_status"]["colour"] = "teal"
    identity = example("/v1/identity", "get")
    identity["identity"]["roles"] = ["viewer", "a_role_from_2030"]

    incident = Incident.from_json(body)

    assert (incident.mode, incident.visibility, incident.incident_status.category) == ("drill", "internal", "snoozed")
    assert Identity.from_json(identity).roles == ("viewer", "a_role_from_2030")


def test_optional_parts_may_be_absent() -> None:
    body = {
        "incident": {
            "id": "01ABC",
            "reference": "INC-7",
            "incident_status": {"id": "01ST", "category": "closed"},
        }
    }

    incident = Incident.from_json(body)

    assert incident.severity is None and incident.summary is None and incident.permalink is None
    assert incident.incident_status.is_closed
    assert incident.incident_status.rank == 0


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda b: b["incident"].pop("id"), "incident.id"),
        (lambda b: b["incident"].pop("reference"), "incident.reference"),
        (lambda b: b["incident"]["incident_status"].pop("category"), "incident_status.category"),
        (lambda b: b["incident"].update(id=42), "incident.id"),
        (lambda b: b.pop("incident"), "incident is not an object"),
        (lambda b: b["incident"].update(severity="Minor"), "severity is not an object"),
    ],
)
def test_what_the_product_needs_is_required(mutate: Any, problem: str) -> None:
    body = example("/v2/incidents/{id}", "get")
    mutate(body)

    with pytest.raises(ResponseShapeError, match=problem):
        Incident.from_json(body)


def test_lists_require_their_list() -> None:
    with pytest.raises(ResponseShapeError, match="severities"):
        list_of({"severity": []}, "severities", Severity.from_json)
    with pytest.raises(ResponseShapeError, match="response"):
        list_of(["not", "an", "object"], "incident_statuses", IncidentStatus.from_json)


def test_create_request_omits_unset_fields_and_validates_against_the_spec() -> None:
    minimal = CreateIncidentRequest(idempotency_key="alert-1", name="[AnomalyArmor] Column removed")
    full = CreateIncidentRequest(
        idempotency_key="alert-2",
        name="n",
        visibility="private",
        mode="test",
        summary="s",
        severity_id="01SEV",
        incident_type_id="01TYPE",
    )

    assert minimal.to_json() == {
        "idempotency_key": "alert-1",
        "name": "[AnomalyArmor] Column removed",
        "visibility": "public",
        "mode": "standard",
    }
    assert full.to_json()["severity_id"] == "01SEV" and full.to_json()["incident_type_id"] == "01TYPE"
    for request in (minimal, full):
        validator("IncidentsCreatePayloadV2").validate(request.to_json())


def test_edit_request_always_carries_incident_and_notify_and_validates_against_the_spec() -> None:
    close = EditIncidentRequest(incident_status_id="01CLOSED", notify_incident_channel=True)
    nothing = EditIncidentRequest()

    assert close.to_json() == {"incident": {"incident_status_id": "01CLOSED"}, "notify_incident_channel": True}
    assert nothing.to_json() == {"incident": {}, "notify_incident_channel": False}
    for request in (close, nothing, EditIncidentRequest(severity_id="s", summary="x", name="y")):
        validator("IncidentsEditPayloadV2").validate(request.to_json())


def example_of(path: str, method: str, status: str) -> dict[str, Any]:
    operation = load_subset()["paths"][path][method]
    body: dict[str, Any] = operation["responses"][status]["content"]["application/json"]["example"]
    return copy.deepcopy(body)


def test_an_alert_source_from_the_spec_example_keeps_no_secret() -> None:
    body = example("/v2/alert_sources/{id}", "get")

    source = AlertSource.from_json(body)

    assert (source.id, source.name, source.source_type) == (
        "01GW2G3V0S59R238FAHPDS1R66",
        "Production Web Dashboard Alerts",
        "alertmanager",
    )
    assert not source.is_http
    assert source.heartbeat == AlertSourceHeartbeat(interval_seconds=60, grace_period_seconds=0, failure_threshold=1)
    assert body["alert_source"]["secret_token"] not in repr(source)


def test_an_alert_source_needs_its_id_and_type() -> None:
    with pytest.raises(ResponseShapeError, match=r"alert_source\.source_type"):
        AlertSource.from_json({"alert_source": {"id": "01X"}})


def test_the_accepted_alert_event_from_the_spec_example() -> None:
    body = example_of("/v2/alert_events/http/{alert_source_config_id}", "post", "202")

    assert AlertEventAccepted.from_json(body) == AlertEventAccepted(
        "success", "Event accepted for processing", "unique-key"
    )


def test_custom_fields_and_options_from_the_spec_examples() -> None:
    fields = list_of(example("/v2/custom_fields", "get"), "custom_fields", CustomField.from_json)
    options = list_of(example("/v1/custom_field_options", "get"), "custom_field_options", CustomFieldOption.from_json)

    assert fields == [
        CustomField(
            "01FCNDV6P870EA6S7TK1DSYDG0", "Affected Team", "single_select", "Which team is impacted by this issue"
        )
    ]
    assert fields[0].takes_options
    assert options == [CustomFieldOption("01FCNDV6P870EA6S7TK1DSYDG0", "01FCNDV6P870EA6S7TK1DSYDG0", "Product", 10)]


def test_an_incidents_custom_field_entries_from_the_spec_example() -> None:
    incident = Incident.from_json(example("/v2/incidents/{id}", "get"))

    (entry,) = incident.custom_field_entries
    assert entry.custom_field.name == "Affected Team"
    (value,) = entry.values
    assert value.value_option is not None and value.value_option.value == "Product"
    assert (value.value_text, value.value_numeric, value.value_link) == (
        "This is my text field, I hope you like it",
        "123.456",
        "https://google.com/",
    )


def test_terminal_status_categories_are_the_spec_categories_that_end_an_incident() -> None:
    categories = load_subset()["components"]["schemas"]["IncidentStatusV2"]["properties"]["category"]["enum"]

    assert TERMINAL_STATUS_CATEGORIES < set(categories)
    assert {c for c in categories if IncidentStatus("s", "S", c, 0, None).is_terminal} == {
        "closed",
        "declined",
        "merged",
        "canceled",
    }


def test_an_alert_event_omits_unset_fields() -> None:
    minimal = AlertEvent(status="resolved", title="t", deduplication_key="k")
    full = AlertEvent(
        status="firing", title="t", deduplication_key="k", description="d", metadata={"a": 1}, source_url="u"
    )

    assert minimal.to_json() == {"status": "resolved", "title": "t", "deduplication_key": "k"}
    assert full.to_json() == {
        **minimal.to_json(),
        "status": "firing",
        "description": "d",
        "metadata": {"a": 1},
        "source_url": "u",
    }


def test_create_and_edit_carry_custom_field_entries_only_when_set() -> None:
    entry = CustomFieldEntryPayload("01F", (CustomFieldValuePayload.text("x"), CustomFieldValuePayload.option("01O")))

    assert "custom_field_entries" not in CreateIncidentRequest(idempotency_key="k", name="n").to_json()
    assert CreateIncidentRequest(idempotency_key="k", name="n", custom_field_entries=(entry,)).to_json()[
        "custom_field_entries"
    ] == [{"custom_field_id": "01F", "values": [{"value_text": "x"}, {"value_option_id": "01O"}]}]
    assert "custom_field_entries" not in EditIncidentRequest(name="n").to_json()["incident"]
    assert EditIncidentRequest(custom_field_entries=()).to_json()["incident"] == {"custom_field_entries": []}
    assert EditIncidentRequest(custom_field_entries=(CustomFieldEntryPayload("01F"),)).to_json() == {
        "incident": {"custom_field_entries": [{"custom_field_id": "01F", "values": []}]},
        "notify_incident_channel": False,
    }
