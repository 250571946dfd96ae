"""Models against the contract: the spec's own examples parse, additions are tolerated, payloads validate."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from incidentio_operator.incidentio import (
    CreateIncidentRequest,
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
