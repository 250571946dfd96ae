"""Contract: every answer the simulator gives and every request the client sends validate against the spec subset."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import referencing
import referencing.jsonschema

from incidentio_operator.incidentio import (
    Account,
    AlertEvent,
    AlertSourceAccount,
    AlertSourceToken,
    ApiKey,
    CreateIncidentRequest,
    CustomFieldEntryPayload,
    CustomFieldValuePayload,
    EditIncidentRequest,
    IncidentIoClient,
)
from incidentio_operator.incidentio.client import OPTIONS_PAGE_SIZE
from incidentio_operator.standins.simulator import (
    CLOSED_STATUS_ID,
    CUSTOM_FIELD_AFFECTED_ROWS_ID,
    CUSTOM_FIELD_DATA_ASSET_ID,
    CUSTOM_FIELD_ENVIRONMENTS_ID,
    CUSTOM_FIELD_RUNBOOK_ID,
    CUSTOM_FIELD_TEAM_ID,
    INVESTIGATING_STATUS_ID,
    SEVERITY_MINOR_ID,
    AlertSourceConfig,
    HeartbeatSettings,
    Simulator,
    SimulatorConfig,
    extract_spec,
)
from incidentio_operator.standins.simulator.config import RetryAfterForm
from incidentio_operator.standins.simulator.extract_spec import DEFAULT_SOURCE
from incidentio_operator.standins.simulator.spec import OPERATIONS as SIMULATED
from incidentio_operator.standins.simulator.spec import response_schema_for

SUBSET_TEXT = resources.files("incidentio_operator.standins.simulator").joinpath("openapi-subset.json").read_text()
SUBSET: dict[str, Any] = json.loads(SUBSET_TEXT)
KEY = "inc_live_contract_a1b2c3d4e5f6"
VIEWER_KEY = "inc_live_contract_viewer_a1b2c3"
SOURCE_ID = "01GW2G3V0S59R238FAHPDS1R66"
SOURCE_TOKEN = "as-contract-token-7e6d5c4b"
HEARTBEAT_ID = "01GW2G3V0S59R238FAHPDS1R67"
HEARTBEAT_TOKEN = "hb-contract-token-3a2b1c0d"
OPERATIONS = {
    "identity": ("get", "/v1/identity"),
    "list_incident_statuses": ("get", "/v1/incident_statuses"),
    "list_severities": ("get", "/v1/severities"),
    "create_incident": ("post", "/v2/incidents"),
    "show_incident": ("get", "/v2/incidents/{id}"),
    "edit_incident": ("post", "/v2/incidents/{id}/actions/edit"),
    "show_alert_source": ("get", "/v2/alert_sources/{id}"),
    "create_alert_event": ("post", "/v2/alert_events/http/{alert_source_config_id}"),
    "ping_heartbeat": ("post", "/v2/heartbeat/{alert_source_config_id}/ping"),
    "ping_heartbeat_get": ("get", "/v2/heartbeat/{alert_source_config_id}/ping"),
    "list_custom_fields": ("get", "/v2/custom_fields"),
    "list_custom_field_options": ("get", "/v1/custom_field_options"),
}


def closed_world(document: dict[str, Any]) -> dict[str, Any]:
    """The subset with additionalProperties false on the spec's own object schemas.

    The spec leaves objects open, which would let the simulator invent fields unnoticed; closing them makes
    the contract say "only what incident.io documents". The transcribed error schemas stay as written.
    """
    closed = copy.deepcopy(document)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for key, value in node.items():
                if key == "properties":
                    for child in value.values():
                        close(child)
                else:
                    close(value)
        elif isinstance(node, list):
            for item in node:
                close(item)

    for schema in closed["components"]["schemas"].values():
        if "x-documented-in" not in schema:
            close(schema)
    return closed


REGISTRY: referencing.Registry[Any] = referencing.Registry().with_resource(
    "urn:subset", referencing.jsonschema.DRAFT4.create_resource(closed_world(SUBSET))
)


def assert_matches(schema_name: str, body: Any) -> None:
    validator = jsonschema.Draft4Validator({"$ref": f"urn:subset#/components/schemas/{schema_name}"}, registry=REGISTRY)
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not problems, f"{schema_name}: {problems}"


def success_schema(operation: str) -> tuple[int, str]:
    method, path = OPERATIONS[operation]
    responses = SUBSET["paths"][path][method]["responses"]
    (status,) = responses
    ref: str = responses[status]["content"]["application/json"]["schema"]["$ref"]
    return int(status), ref.rsplit("/", 1)[-1]


def assert_success(operation: str, response: httpx.Response) -> dict[str, Any]:
    status, schema = success_schema(operation)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert_matches(schema, body)
    if "incident" in body:
        for field in ("created_at", "updated_at"):
            datetime.fromisoformat(body["incident"][field])
    return body


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert_matches("TooManyRequestsResponseV1" if status == 429 else "ErrorResponseV1", body)
    assert body["status"] == status
    return body


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    sim = Simulator(SimulatorConfig(rate_limit_per_minute=None))
    sim.set_key(KEY, name="contract", roles=["viewer", "incident_creator", "incident_editor"])
    sim.set_key(VIEWER_KEY, name="contract-viewer", roles=["viewer"])
    sim.set_alert_source(AlertSourceConfig(SOURCE_ID, "contract alerts", SOURCE_TOKEN))
    sim.set_alert_source(
        AlertSourceConfig(HEARTBEAT_ID, "contract heartbeat", HEARTBEAT_TOKEN, "heartbeat", HeartbeatSettings(60, 30))
    )
    async with sim:
        yield sim


@pytest.fixture
async def http(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=simulator.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


def create_body(**overrides: Any) -> dict[str, Any]:
    return {"idempotency_key": "contract-1", "visibility": "private", "mode": "test", "name": "n", **overrides}


async def test_every_success_body_matches_its_declared_response_schema(http: httpx.AsyncClient) -> None:
    assert_success("identity", await http.get("/v1/identity"))
    assert_success("list_incident_statuses", await http.get("/v1/incident_statuses"))
    assert_success("list_severities", await http.get("/v1/severities"))
    bare = assert_success("create_incident", await http.post("/v2/incidents", json=create_body()))["incident"]
    full = assert_success(
        "create_incident",
        await http.post(
            "/v2/incidents",
            json=create_body(idempotency_key="contract-2", severity_id=SEVERITY_MINOR_ID, summary="s"),
        ),
    )["incident"]
    replay = assert_success("create_incident", await http.post("/v2/incidents", json=create_body()))["incident"]
    assert replay["id"] == bare["id"]
    assert_success("show_incident", await http.get(f"/v2/incidents/{full['id']}"))
    assert_success("show_incident", await http.get("/v2/incidents/2"))
    assert_success(
        "edit_incident",
        await http.post(
            f"/v2/incidents/{full['id']}/actions/edit",
            json={
                "incident": {"incident_status_id": CLOSED_STATUS_ID, "name": "renamed", "call_url": "https://x"},
                "notify_incident_channel": False,
            },
        ),
    )


async def test_every_error_envelope_matches_the_documented_error_schema(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    created = (await http.post("/v2/incidents", json=create_body())).json()["incident"]
    edit_path = f"/v2/incidents/{created['id']}/actions/edit"

    async with httpx.AsyncClient(base_url=simulator.url) as anonymous:
        assert_error(await anonymous.get("/v1/identity"), 401)
        assert_error(await anonymous.get("/v1/identity", headers={"Authorization": "Bearer nope"}), 401)
        assert_error(await anonymous.get("/v9/unknown"), 404)
    async with httpx.AsyncClient(base_url=simulator.url, headers={"Authorization": f"Bearer {VIEWER_KEY}"}) as v:
        assert_error(await v.post("/v2/incidents", json=create_body()), 403)

    assert_error(await http.post("/v2/incidents", content=b"{", headers={"Content-Type": "application/json"}), 400)
    assert_error(await http.post("/v2/incidents", json={"mode": "x", "visibility": 1}), 422)
    assert_error(await http.post("/v2/incidents", json=create_body(idempotency_key="k", severity_id="x")), 422)
    assert_error(await http.get("/v2/incidents/999"), 404)
    assert_error(
        await http.post("/v2/incidents/999/actions/edit", json={"incident": {}, "notify_incident_channel": True}), 404
    )
    assert_error(await http.post(edit_path, json={"incident": {"incident_status_id": "x"}}), 422)

    simulator.config.severity_required = True
    assert_error(await http.post("/v2/incidents", json=create_body(idempotency_key="k2")), 422)
    simulator.config.close_requires_role = "post_incident_flow_opt_out"
    closing = {"incident": {"incident_status_id": CLOSED_STATUS_ID}, "notify_incident_channel": True}
    assert_error(await http.post(edit_path, json=closing), 422)

    simulator.faults.fail_next(1, status=503, retry_after="1")
    assert_error(await http.get("/v1/identity"), 503)
    simulator.faults.fail_next(1, status=429, retry_after="1")
    assert_error(await http.get("/v1/identity"), 429)
    simulator.faults.hang_next(1, seconds=0.01)
    assert_error(await http.get("/v1/identity"), 504)
    simulator.faults.lose_response_next(1)
    assert_error(await http.get("/v1/identity"), 502)

    simulator.config.rate_limit_per_minute = 1
    await http.get("/v1/identity")
    assert_error(await http.get("/v1/identity"), 429)


async def test_admin_endpoints_list_what_the_api_returned(simulator: Simulator, http: httpx.AsyncClient) -> None:
    created = (await http.post("/v2/incidents", json=create_body())).json()["incident"]
    async with httpx.AsyncClient(base_url=simulator.url) as anonymous:
        listed = (await anonymous.get("/_simulator/incidents")).json()["incidents"]
        recorded = (await anonymous.get("/_simulator/requests")).json()["requests"]
    assert listed == [created]
    for incident in listed:
        assert_matches("IncidentV2", incident)
    assert recorded[0]["operation"] == "create_incident"
    assert recorded[0]["key_name"] == "contract"


def test_the_simulator_routes_each_operation_as_the_subset_declares_it() -> None:
    assert {name: (op.method.lower(), op.path) for name, op in SIMULATED.items()} == OPERATIONS
    for operation in SIMULATED.values():
        responses = SUBSET["paths"][operation.path][operation.method.lower()]["responses"]
        assert list(responses) == [str(operation.response_status)]
        assert response_schema_for(operation) == operation.response_schema
        request = SUBSET["paths"][operation.path][operation.method.lower()].get("requestBody")
        declared = request["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1] if request else None
        assert declared == operation.request_schema


def test_subset_holds_exactly_the_operations_the_product_uses_and_names_its_source() -> None:
    declared = {(method, path) for path, item in SUBSET["paths"].items() for method in item}
    assert declared == set(OPERATIONS.values())
    source = SUBSET["x-source"]
    assert source["file"] == "incident-io-openapi.json"
    assert (source["title"], source["version"], source["retrieved"]) == (
        SUBSET["info"]["title"],
        SUBSET["info"]["version"],
        "2026-11-26",
    )


def test_every_reference_in_the_subset_resolves_within_it() -> None:
    schemas = SUBSET["components"]["schemas"]
    refs = {part.split('"')[0] for part in SUBSET_TEXT.split('"$ref": "#/components/schemas/')[1:]}
    assert refs and refs <= set(schemas)


@pytest.mark.skipif(not DEFAULT_SOURCE.exists(), reason="the full incident.io spec is not available here")
def test_subset_is_reproducible_from_the_full_spec(tmp_path: Path) -> None:
    output = tmp_path / "subset.json"
    assert extract_spec.main([str(DEFAULT_SOURCE), "--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == SUBSET_TEXT


def test_the_closed_world_contract_refuses_an_invented_field() -> None:
    incident = {**SUBSET["components"]["schemas"]["IncidentV2"]["example"], "invented": True}
    with pytest.raises(AssertionError, match="invented"):
        assert_matches("IncidentV2", incident)


# --- alert sources, alert events, heartbeats, custom fields, ended incidents -------------------------------


def assert_no_content(operation: str, response: httpx.Response) -> None:
    method, path = OPERATIONS[operation]
    (status,) = SUBSET["paths"][path][method]["responses"]
    assert "content" not in SUBSET["paths"][path][method]["responses"][status]
    assert (response.status_code, response.content) == (int(status), b"")


def every_entry() -> list[dict[str, Any]]:
    fields = {field.id: field for field in SimulatorConfig().custom_fields}
    return [
        {
            "custom_field_id": CUSTOM_FIELD_TEAM_ID,
            "values": [{"value_option_id": fields[CUSTOM_FIELD_TEAM_ID].options[0].id}],
        },
        {
            "custom_field_id": CUSTOM_FIELD_ENVIRONMENTS_ID,
            "values": [{"value_option_id": option.id} for option in fields[CUSTOM_FIELD_ENVIRONMENTS_ID].options],
        },
        {"custom_field_id": CUSTOM_FIELD_DATA_ASSET_ID, "values": [{"value_text": "orders"}]},
        {"custom_field_id": CUSTOM_FIELD_RUNBOOK_ID, "values": [{"value_link": "https://runbooks.example"}]},
        {"custom_field_id": CUSTOM_FIELD_AFFECTED_ROWS_ID, "values": [{"value_numeric": "12"}]},
    ]


async def test_every_new_success_body_matches_its_declared_response_schema(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    assert_success("show_alert_source", await http.get(f"/v2/alert_sources/{SOURCE_ID}"))
    assert_success("show_alert_source", await http.get(f"/v2/alert_sources/{HEARTBEAT_ID}"))
    fields = assert_success("list_custom_fields", await http.get("/v2/custom_fields"))["custom_fields"]
    for field in fields:
        first = await http.get("/v1/custom_field_options", params={"custom_field_id": field["id"], "page_size": 1})
        body = assert_success("list_custom_field_options", first)
        if "after" in body["pagination_meta"]:
            params = {"custom_field_id": field["id"], "after": body["pagination_meta"]["after"]}
            assert_success("list_custom_field_options", await http.get("/v1/custom_field_options", params=params))
    created = assert_success(
        "create_incident", await http.post("/v2/incidents", json=create_body(custom_field_entries=every_entry()))
    )["incident"]
    assert len(created["custom_field_entries"]) == 5
    assert_success("show_incident", await http.get(f"/v2/incidents/{created['id']}"))
    edited = await http.post(
        f"/v2/incidents/{created['id']}/actions/edit",
        json={"incident": {"custom_field_entries": every_entry()[:1]}, "notify_incident_channel": False},
    )
    assert_success("edit_incident", edited)
    simulator.set_incident_status(created["id"], category="declined")
    assert_success("show_incident", await http.get(f"/v2/incidents/{created['id']}"))

    async with httpx.AsyncClient(base_url=simulator.url) as source:
        event = {"status": "firing", "title": "t", "deduplication_key": "k", "metadata": {"a": [1]}, "source_url": "u"}
        by_header = await source.post(
            f"/v2/alert_events/http/{SOURCE_ID}", json=event, headers={"Authorization": f"Bearer {SOURCE_TOKEN}"}
        )
        assert_success("create_alert_event", by_header)
        resolved = {"status": "resolved", "title": "t", "deduplication_key": "k"}
        by_query = await source.post(
            f"/v2/alert_events/http/{SOURCE_ID}", json=resolved, params={"token": SOURCE_TOKEN}
        )
        assert_success("create_alert_event", by_query)
        ping = f"/v2/heartbeat/{HEARTBEAT_ID}/ping"
        bearer = {"Authorization": f"Bearer {HEARTBEAT_TOKEN}"}
        assert_no_content("ping_heartbeat", await source.post(ping, headers=bearer))
        assert_no_content("ping_heartbeat_get", await source.get(ping, params={"token": HEARTBEAT_TOKEN}))


async def test_every_new_error_envelope_matches_the_documented_error_schema(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    events = f"/v2/alert_events/http/{SOURCE_ID}"
    event = {"status": "firing", "title": "t", "deduplication_key": "k"}
    token = {"Authorization": f"Bearer {SOURCE_TOKEN}"}
    async with httpx.AsyncClient(base_url=simulator.url) as source:
        assert_error(await source.post(events, json=event), 401)
        assert_error(await source.post(events, json=event, headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(await source.post("/v2/alert_events/http/01NOPE", json=event, headers=token), 404)
        assert_error(await source.post(events, json={"status": "maybe"}, headers=token), 422)
        assert_error(
            await source.post(events, content=b"{", headers={**token, "Content-Type": "application/json"}), 400
        )
        assert_error(await source.post(f"/v2/heartbeat/{HEARTBEAT_ID}/ping"), 401)
        assert_error(await source.get(f"/v2/heartbeat/{SOURCE_ID}/ping", params={"token": SOURCE_TOKEN}), 404)
        simulator.faults.fail_next(1, status=429, operation="create_alert_event", retry_after="1")
        assert_error(await source.post(events, json=event, headers=token), 429)
        simulator.faults.hang_next(1, seconds=0.01, operation="ping_heartbeat")
        assert_error(await source.post(f"/v2/heartbeat/{HEARTBEAT_ID}/ping", params={"token": HEARTBEAT_TOKEN}), 504)
        simulator.config.alert_events_per_minute, simulator.config.alert_events_refill_per_second = 1, 0.01
        forms: tuple[RetryAfterForm, ...] = ("seconds", "http-date")
        for form in forms:
            simulator.config.retry_after_form = form
            await source.post(events, json=event, headers=token)
            refused = await source.post(events, json=event, headers=token)
            assert_error(refused, 429)
            assert refused.headers["Retry-After"]

    assert_error(await http.get("/v2/alert_sources/01NOPE"), 404)
    async with httpx.AsyncClient(base_url=simulator.url, headers={"Authorization": f"Bearer {SOURCE_TOKEN}"}) as wrong:
        assert_error(await wrong.get(f"/v2/alert_sources/{SOURCE_ID}"), 401)
    assert_error(await http.get("/v1/custom_field_options"), 422)
    assert_error(await http.get("/v1/custom_field_options", params={"custom_field_id": "01NOPE"}), 404)
    wrong_entry = [{"custom_field_id": CUSTOM_FIELD_AFFECTED_ROWS_ID, "values": [{"value_text": "x"}]}]
    assert_error(await http.post("/v2/incidents", json=create_body(custom_field_entries=wrong_entry)), 422)
    created = (await http.post("/v2/incidents", json=create_body())).json()["incident"]
    simulator.set_incident_status(created["id"], category="merged")
    reopen = {"incident": {"incident_status_id": INVESTIGATING_STATUS_ID}, "notify_incident_channel": False}
    assert_error(await http.post(f"/v2/incidents/{created['id']}/actions/edit", json=reopen), 422)
    simulator.delete_incident(created["id"])
    assert_error(await http.get(f"/v2/incidents/{created['id']}"), 404)
    assert_error(await http.post(f"/v2/incidents/{created['id']}/actions/edit", json=reopen), 404)


# --- what the client sends ----------------------------------------------------------------------------------


async def test_every_request_the_client_sends_validates_against_the_spec_request_schema(simulator: Simulator) -> None:
    account = Account(base_url=simulator.url, api_key=ApiKey(KEY))
    source = AlertSourceAccount(simulator.url, SOURCE_ID, AlertSourceToken(SOURCE_TOKEN))
    heartbeat = AlertSourceAccount(simulator.url, HEARTBEAT_ID, AlertSourceToken(HEARTBEAT_TOKEN))
    entries = tuple(
        CustomFieldEntryPayload(
            entry["custom_field_id"],
            tuple(CustomFieldValuePayload(**value) for value in entry["values"]),
        )
        for entry in every_entry()
    )
    async with IncidentIoClient() as client:
        await client.identity(account)
        await client.list_incident_statuses(account)
        await client.list_severities(account)
        for field in await client.list_custom_fields(account):
            await client.list_custom_field_options(account, field.id)
        await client.get_alert_source(account, SOURCE_ID)
        await client.create_incident(account, CreateIncidentRequest("contract-a", "n"))
        created = await client.create_incident(
            account,
            CreateIncidentRequest(
                "contract-b",
                "n",
                visibility="private",
                mode="test",
                summary="s",
                severity_id=SEVERITY_MINOR_ID,
                custom_field_entries=entries,
            ),
        )
        await client.get_incident(account, created.id)
        every_field = EditIncidentRequest(
            name="n2",
            summary="s2",
            severity_id=SEVERITY_MINOR_ID,
            incident_status_id=INVESTIGATING_STATUS_ID,
            custom_field_entries=(*entries[:1], CustomFieldEntryPayload(CUSTOM_FIELD_RUNBOOK_ID)),
            notify_incident_channel=True,
        )
        await client.edit_incident(account, created.id, every_field)
        await client.edit_incident(account, created.id, EditIncidentRequest(incident_status_id=CLOSED_STATUS_ID))
        await client.create_alert_event(source, AlertEvent(status="firing", title="t", deduplication_key="k"))
        full = AlertEvent(
            status="firing", title="t", deduplication_key="k", description="d", metadata={"m": [1]}, source_url="u"
        )
        await client.create_alert_event(source, full)
        await client.create_alert_event(source, AlertEvent(status="resolved", title="t", deduplication_key="k"))
        await client.ping_heartbeat(heartbeat)

    sent = simulator.requests
    assert {request.operation for request in sent} == set(OPERATIONS) - {"ping_heartbeat_get"}
    for request in sent:
        assert request.status < 400, request
        schema = SIMULATED[request.operation].request_schema
        if schema is None:
            assert request.body is None, request
        else:
            assert_matches(schema, request.body)


def test_the_clients_options_page_size_is_within_the_spec_maximum() -> None:
    parameters = SUBSET["paths"]["/v1/custom_field_options"]["get"]["parameters"]
    page_size = next(parameter for parameter in parameters if parameter["name"] == "page_size")

    assert 1 <= OPTIONS_PAGE_SIZE <= page_size["schema"]["maximum"]
