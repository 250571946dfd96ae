"""The incident.io contract as the simulator sees it: the subset spec, its operations, compiled validators."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import jsonschema
import referencing
import referencing.jsonschema

SUBSET_FILE = "openapi-subset.json"
SUBSET_URI = "urn:incidentio-operator:openapi-subset"


@dataclass(frozen=True)
class Operation:
    """One API operation: how it is routed, who may call it and which schemas describe it.

    ``auth`` is how a caller proves itself: an API key (``Authorization: Bearer``), or an alert source's
    token, which the spec's alert events and heartbeat operations take as a header or a ``token`` query
    parameter. ``response_schema`` is None for an answer without a body (204).
    """

    name: str
    method: str
    path: str
    required_role: str | None
    request_schema: str | None
    response_status: int
    response_schema: str | None
    auth: Literal["api_key", "alert_source"] = "api_key"


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        # Identity is how a client learns what its key may do, so any valid key may call it.
        Operation("identity", "GET", "/v1/identity", None, None, 200, "UtilitiesIdentityResultV1"),
        Operation(
            "list_incident_statuses",
            "GET",
            "/v1/incident_statuses",
            "viewer",
            None,
            200,
            "IncidentStatusesListResultV1",
        ),
        Operation("list_severities", "GET", "/v1/severities", "viewer", None, 200, "SeveritiesListResultV1"),
        Operation(
            "create_incident",
            "POST",
            "/v2/incidents",
            "incident_creator",
            "IncidentsCreatePayloadV2",
            200,
            "IncidentsCreateResultV2",
        ),
        Operation("show_incident", "GET", "/v2/incidents/{id}", "viewer", None, 200, "IncidentsShowResultV2"),
        Operation(
            "edit_incident",
            "POST",
            "/v2/incidents/{id}/actions/edit",
            "incident_editor",
            "IncidentsEditPayloadV2",
            200,
            "IncidentsEditResultV2",
        ),
        Operation(
            "show_alert_source", "GET", "/v2/alert_sources/{id}", "viewer", None, 200, "AlertSourcesShowResultV2"
        ),
        Operation(
            "create_alert_event",
            "POST",
            "/v2/alert_events/http/{alert_source_config_id}",
            None,
            "AlertEventsCreateHTTPPayloadV2",
            202,
            "AlertEventsCreateHTTPResultV2",
            auth="alert_source",
        ),
        # The spec's "Heartbeat V2#Ping" and "#Ping#1": the same ping, sent as POST or GET.
        *(
            Operation(
                name, method, "/v2/heartbeat/{alert_source_config_id}/ping", None, None, 204, None, "alert_source"
            )
            for name, method in (("ping_heartbeat", "POST"), ("ping_heartbeat_get", "GET"))
        ),
        Operation("list_custom_fields", "GET", "/v2/custom_fields", "viewer", None, 200, "CustomFieldsListResultV2"),
        Operation(
            "list_custom_field_options",
            "GET",
            "/v1/custom_field_options",
            "viewer",
            None,
            200,
            "CustomFieldOptionsListResultV1",
        ),
    )
}

ERROR_SCHEMA = "ErrorResponseV1"
TOO_MANY_REQUESTS_SCHEMA = "TooManyRequestsResponseV1"


@cache
def load_subset() -> dict[str, Any]:
    """The subset spec document shipped as package data."""
    text = resources.files(__package__).joinpath(SUBSET_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _registry() -> referencing.Registry[Any]:
    # OpenAPI 3.0 schemas are a dialect of JSON Schema draft 4 (boolean exclusiveMinimum, no $schema).
    resource: referencing.Resource[Any] = referencing.jsonschema.DRAFT4.create_resource(load_subset())
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(SUBSET_URI, resource)
    return registry


@cache
def validator(schema_name: str) -> jsonschema.Draft4Validator:
    """A compiled validator for ``#/components/schemas/<schema_name>``, resolving refs in the subset."""
    ref = {"$ref": f"{SUBSET_URI}#/components/schemas/{schema_name}"}
    return jsonschema.Draft4Validator(ref, registry=_registry())


def response_schema_for(operation: Operation) -> str | None:
    """The schema name the spec declares for the operation's success response; None when it has no body."""
    path_item = load_subset()["paths"][operation.path][operation.method.lower()]
    response = path_item["responses"][str(operation.response_status)]
    if "content" not in response:
        return None
    content = response["content"]["application/json"]
    ref: str = content["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]
