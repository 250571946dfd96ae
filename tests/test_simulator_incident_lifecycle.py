"""The simulator's incidents beyond create and close: every status category, a responder's moves, deletion,
ended incidents, custom fields and their options, and the edit history."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from incidentio_operator.standins.simulator import (
    CANCELED_STATUS_ID,
    CLOSED_STATUS_ID,
    CUSTOM_FIELD_AFFECTED_ROWS_ID,
    CUSTOM_FIELD_DATA_ASSET_ID,
    CUSTOM_FIELD_ENVIRONMENTS_ID,
    CUSTOM_FIELD_RUNBOOK_ID,
    CUSTOM_FIELD_TEAM_ID,
    DECLINED_STATUS_ID,
    DOCUMENTING_STATUS_ID,
    INVESTIGATING_STATUS_ID,
    MERGED_STATUS_ID,
    PAUSED_STATUS_ID,
    SEVERITY_CRITICAL_ID,
    TERMINAL_CATEGORIES,
    CustomFieldOptionSeed,
    CustomFieldSeed,
    Simulator,
    SimulatorConfig,
)
from incidentio_operator.standins.simulator.spec import load_subset

KEY = "inc_live_lifecycle_6e5d4c3b2a19"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def simulator(clock: FakeClock) -> AsyncIterator[Simulator]:
    sim = Simulator(SimulatorConfig(rate_limit_per_minute=None), clock=clock)
    sim.set_key(KEY, name="operator", roles=["viewer", "incident_creator", "incident_editor"])
    async with sim:
        yield sim


@pytest.fixture
async def http(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=simulator.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5.0
    ) as client:
        yield client


def option_id(simulator: Simulator, field_id: str, value: str) -> str:
    field = next(field for field in simulator.config.custom_fields if field.id == field_id)
    return next(option.id for option in field.options if option.value == value)


async def create(http: httpx.AsyncClient, key: str = "alert-1/dest/1", **fields: Any) -> dict[str, Any]:
    body = {"idempotency_key": key, "visibility": "public", "name": "Column removed", **fields}
    response = await http.post("/v2/incidents", json=body)
    assert response.status_code == 200, response.text
    incident: dict[str, Any] = response.json()["incident"]
    return incident


async def edit(http: httpx.AsyncClient, incident_id: str, notify: bool = False, **fields: Any) -> httpx.Response:
    body = {"incident": fields, "notify_incident_channel": notify}
    return await http.post(f"/v2/incidents/{incident_id}/actions/edit", json=body)


def only_error(response: httpx.Response) -> dict[str, Any]:
    errors: list[dict[str, Any]] = response.json()["errors"]
    assert len(errors) == 1, errors
    return errors[0]


# --- statuses and a responder's moves -----------------------------------------------------------------


async def test_a_status_is_seeded_for_every_category_the_spec_lists(http: httpx.AsyncClient) -> None:
    spec_categories = load_subset()["components"]["schemas"]["IncidentStatusV2"]["properties"]["category"]["enum"]

    statuses = (await http.get("/v1/incident_statuses")).json()["incident_statuses"]

    assert sorted({status["category"] for status in statuses}) == sorted(spec_categories)
    assert len(spec_categories) == 8


@pytest.mark.parametrize(
    ("move", "expected_id", "category"),
    [
        ({"category": "declined"}, DECLINED_STATUS_ID, "declined"),
        ({"category": "merged"}, MERGED_STATUS_ID, "merged"),
        ({"category": "canceled"}, CANCELED_STATUS_ID, "canceled"),
        ({"category": "paused"}, PAUSED_STATUS_ID, "paused"),
        ({"status_id": CLOSED_STATUS_ID}, CLOSED_STATUS_ID, "closed"),
    ],
)
async def test_a_responder_moves_an_incident_to_any_status_and_get_shows_it(
    simulator: Simulator, http: httpx.AsyncClient, move: dict[str, str], expected_id: str, category: str
) -> None:
    created = await create(http)

    moved = simulator.set_incident_status(created["id"], **move)
    shown = (await http.get(f"/v2/incidents/{created['id']}")).json()["incident"]

    assert moved["incident_status"]["id"] == expected_id
    assert (shown["incident_status"]["id"], shown["incident_status"]["category"]) == (expected_id, category)
    assert shown["incident_status"]["name"]
    assert simulator.incident_edits(created["id"]) == []


async def test_a_responders_move_is_refused_for_an_unknown_incident_status_or_category(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    created = await create(http)
    with pytest.raises(KeyError):
        simulator.set_incident_status("01NOPE", category="declined")
    with pytest.raises(ValueError, match="snoozed"):
        simulator.set_incident_status(created["id"], category="snoozed")
    with pytest.raises(ValueError, match="exactly one"):
        simulator.set_incident_status(created["id"], status_id=CLOSED_STATUS_ID, category="closed")


async def test_the_admin_endpoint_moves_an_incident_by_id_or_category(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    created = await create(http)
    path = f"/_simulator/incidents/{created['id']}/status"
    async with httpx.AsyncClient(base_url=simulator.url) as admin:
        by_category = await admin.post(path, json={"category": "merged"})
        by_id = await admin.post(path, json={"incident_status_id": DECLINED_STATUS_ID})
        neither = await admin.post(path, json={})
        unknown = await admin.post("/_simulator/incidents/01NOPE/status", json={"category": "closed"})

    assert by_category.json()["incident"]["incident_status"]["category"] == "merged"
    assert by_id.json()["incident"]["incident_status"]["id"] == DECLINED_STATUS_ID
    assert (neither.status_code, neither.json()["type"]) == (422, "validation_error")
    assert (unknown.status_code, unknown.json()["type"]) == (404, "not_found")
    assert simulator.incident(created["id"])["incident_status"]["id"] == DECLINED_STATUS_ID


@pytest.mark.parametrize("category", sorted(TERMINAL_CATEGORIES))
async def test_an_ended_incident_refuses_another_status_but_accepts_its_own(
    simulator: Simulator, http: httpx.AsyncClient, category: str
) -> None:
    created = await create(http)
    ended = simulator.set_incident_status(created["id"], category=category)
    own_status = ended["incident_status"]["id"]

    to_live = await edit(http, created["id"], incident_status_id=INVESTIGATING_STATUS_ID)
    to_closed = await edit(http, created["id"], incident_status_id=CLOSED_STATUS_ID)
    same = await edit(http, created["id"], incident_status_id=own_status)
    renamed = await edit(http, created["id"], name="renamed after the end")

    assert to_live.status_code == 422
    assert to_live.json()["type"] == "validation_error"
    detail = only_error(to_live)
    assert detail["source"]["field"] == "incident.incident_status_id"
    assert f"({category})" in detail["message"] and "can no longer be changed" in detail["message"]
    assert to_closed.status_code == (200 if category == "closed" else 422)
    assert same.status_code == 200
    assert renamed.json()["incident"]["name"] == "renamed after the end"
    assert simulator.incident(created["id"])["incident_status"]["id"] == own_status


async def test_a_live_incident_moves_freely_between_open_statuses(http: httpx.AsyncClient) -> None:
    created = await create(http)

    for status in (PAUSED_STATUS_ID, DOCUMENTING_STATUS_ID, INVESTIGATING_STATUS_ID, CLOSED_STATUS_ID):
        assert (await edit(http, created["id"], incident_status_id=status)).status_code == 200


async def test_a_deleted_incident_is_404_for_show_and_edit_and_its_key_is_free(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    first = await create(http)
    second = await create(http, key="alert-2/dest/1")

    simulator.delete_incident(first["id"])
    shown = await http.get(f"/v2/incidents/{first['id']}")
    by_number = await http.get("/v2/incidents/1")
    edited = await edit(http, first["id"], incident_status_id=CLOSED_STATUS_ID)
    again = await create(http)

    for response in (shown, by_number, edited):
        assert response.status_code == 404
        assert response.json()["type"] == "not_found"
        assert response.json()["request_id"]
    assert [incident["reference"] for incident in simulator.incidents] == ["INC-2", "INC-3"]
    assert again["id"] not in (first["id"], second["id"])
    assert simulator.incident("2")["id"] == second["id"]
    with pytest.raises(KeyError):
        simulator.delete_incident(first["id"])


async def test_the_admin_endpoint_deletes_an_incident(simulator: Simulator, http: httpx.AsyncClient) -> None:
    created = await create(http)
    async with httpx.AsyncClient(base_url=simulator.url) as admin:
        deleted = await admin.delete(f"/_simulator/incidents/{created['id']}")
        twice = await admin.delete(f"/_simulator/incidents/{created['id']}")

    assert deleted.status_code == 204
    assert twice.status_code == 404
    assert (await http.get(f"/v2/incidents/{created['id']}")).status_code == 404


# --- edit history ---------------------------------------------------------------------------------------


async def test_every_accepted_edit_is_kept_with_its_fields_key_and_time(
    simulator: Simulator, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    created = await create(http)
    clock.now = 110.0
    await edit(http, created["id"], notify=True, severity_id=SEVERITY_CRITICAL_ID, summary="worse")
    refused = await edit(http, created["id"], severity_id="nope")
    clock.now = 125.5
    await edit(http, created["id"], name="renamed")

    history = simulator.incident_edits(created["id"])
    assert refused.status_code == 422
    assert [(e.fields, e.notify_incident_channel, e.key_name, e.at) for e in history] == [
        ({"severity_id": SEVERITY_CRITICAL_ID, "summary": "worse"}, True, "operator", 110.0),
        ({"name": "renamed"}, False, "operator", 125.5),
    ]
    async with httpx.AsyncClient(base_url=simulator.url) as admin:
        listed = (await admin.get(f"/_simulator/incidents/{created['id']}/edits")).json()["edits"]
        unknown = await admin.get("/_simulator/incidents/01NOPE/edits")
    assert [entry["fields"] for entry in listed] == [e.fields for e in history]
    assert unknown.status_code == 404


# --- custom fields --------------------------------------------------------------------------------------


async def test_custom_fields_of_every_type_the_spec_lists(http: httpx.AsyncClient) -> None:
    spec_types = load_subset()["components"]["schemas"]["CustomFieldV2"]["properties"]["field_type"]["enum"]

    fields = (await http.get("/v2/custom_fields")).json()["custom_fields"]

    assert sorted(field["field_type"] for field in fields) == sorted(spec_types)
    assert {field["name"] for field in fields} >= {"Affected Team", "Environments"}


async def test_options_are_listed_in_sort_order_page_by_page(simulator: Simulator, http: httpx.AsyncClient) -> None:
    whole = await http.get("/v1/custom_field_options", params={"custom_field_id": CUSTOM_FIELD_TEAM_ID})
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        params = {"custom_field_id": CUSTOM_FIELD_TEAM_ID, "page_size": "2", **({"after": after} if after else {})}
        body = (await http.get("/v1/custom_field_options", params=params)).json()
        pages.append([option["value"] for option in body["custom_field_options"]])
        assert body["pagination_meta"]["page_size"] == 2
        after = body["pagination_meta"].get("after")
        if after is None:
            break

    assert [option["value"] for option in whole.json()["custom_field_options"]] == [
        "Data Platform",
        "Payments",
        "Growth",
    ]
    assert "after" not in whole.json()["pagination_meta"]
    assert pages == [["Data Platform", "Payments"], ["Growth"]]
    assert {o["custom_field_id"] for o in whole.json()["custom_field_options"]} == {CUSTOM_FIELD_TEAM_ID}
    text_options = await http.get("/v1/custom_field_options", params={"custom_field_id": CUSTOM_FIELD_DATA_ASSET_ID})
    assert text_options.json()["custom_field_options"] == []


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({}, 422, "custom_field_id"),
        ({"custom_field_id": CUSTOM_FIELD_TEAM_ID, "page_size": "251"}, 422, "page_size"),
        ({"custom_field_id": CUSTOM_FIELD_TEAM_ID, "page_size": "x"}, 422, "page_size"),
        ({"custom_field_id": CUSTOM_FIELD_TEAM_ID, "after": "01NOPE"}, 422, "after"),
        ({"custom_field_id": "01NOSUCHFIELD"}, 404, None),
    ],
)
async def test_options_listing_refuses_what_incident_io_would(
    http: httpx.AsyncClient, params: dict[str, str], status: int, field: str | None
) -> None:
    response = await http.get("/v1/custom_field_options", params=params)

    assert response.status_code == status
    assert only_error(response).get("source", {}).get("field") == field


async def test_an_incident_carries_a_value_of_every_field_type(simulator: Simulator, http: httpx.AsyncClient) -> None:
    payments = option_id(simulator, CUSTOM_FIELD_TEAM_ID, "Payments")
    production = option_id(simulator, CUSTOM_FIELD_ENVIRONMENTS_ID, "production")
    staging = option_id(simulator, CUSTOM_FIELD_ENVIRONMENTS_ID, "staging")
    entries = [
        {"custom_field_id": CUSTOM_FIELD_TEAM_ID, "values": [{"value_option_id": payments}]},
        {
            "custom_field_id": CUSTOM_FIELD_ENVIRONMENTS_ID,
            "values": [{"value_option_id": production}, {"value_option_id": staging}],
        },
        {"custom_field_id": CUSTOM_FIELD_DATA_ASSET_ID, "values": [{"value_text": "snowflake.prod.sales.orders"}]},
        {"custom_field_id": CUSTOM_FIELD_RUNBOOK_ID, "values": [{"value_link": "https://runbooks.example/orders"}]},
        {"custom_field_id": CUSTOM_FIELD_AFFECTED_ROWS_ID, "values": [{"value_numeric": "1234.5"}]},
    ]

    created = await create(http, custom_field_entries=entries)
    shown = (await http.get(f"/v2/incidents/{created['id']}")).json()["incident"]

    by_field = {entry["custom_field"]["id"]: entry for entry in shown["custom_field_entries"]}
    assert shown == created
    assert [v["value_option"]["value"] for v in by_field[CUSTOM_FIELD_TEAM_ID]["values"]] == ["Payments"]
    assert [v["value_option"]["id"] for v in by_field[CUSTOM_FIELD_ENVIRONMENTS_ID]["values"]] == [production, staging]
    assert by_field[CUSTOM_FIELD_DATA_ASSET_ID]["values"] == [{"value_text": "snowflake.prod.sales.orders"}]
    assert by_field[CUSTOM_FIELD_RUNBOOK_ID]["values"] == [{"value_link": "https://runbooks.example/orders"}]
    assert by_field[CUSTOM_FIELD_AFFECTED_ROWS_ID]["values"] == [{"value_numeric": "1234.5"}]
    team = by_field[CUSTOM_FIELD_TEAM_ID]["custom_field"]
    assert (team["name"], team["field_type"], len(team["options"])) == ("Affected Team", "single_select", 3)


async def test_an_edit_changes_the_fields_it_names_and_an_empty_list_unsets_one(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    growth = option_id(simulator, CUSTOM_FIELD_TEAM_ID, "Growth")
    created = await create(
        http,
        custom_field_entries=[
            {"custom_field_id": CUSTOM_FIELD_DATA_ASSET_ID, "values": [{"value_text": "orders"}]},
            {"custom_field_id": CUSTOM_FIELD_RUNBOOK_ID, "values": [{"value_link": "https://a.example"}]},
        ],
    )

    response = await edit(
        http,
        created["id"],
        custom_field_entries=[
            {"custom_field_id": CUSTOM_FIELD_TEAM_ID, "values": [{"value_option_id": growth}]},
            {"custom_field_id": CUSTOM_FIELD_RUNBOOK_ID, "values": []},
        ],
    )

    entries = response.json()["incident"]["custom_field_entries"]
    assert {entry["custom_field"]["name"]: entry["values"] for entry in entries} == {
        "Affected Team": [
            {"value_option": {"id": growth, "custom_field_id": CUSTOM_FIELD_TEAM_ID, "value": "Growth", "sort_key": 30}}
        ],
        "Data Asset": [{"value_text": "orders"}],
    }


def entry(field_id: str, *values: dict[str, Any]) -> dict[str, Any]:
    return {"custom_field_id": field_id, "values": list(values)}


@pytest.mark.parametrize(
    ("entries", "field", "words"),
    [
        (
            [entry("01NOSUCHFIELD0000000000000", {"value_text": "x"})],
            "custom_field_entries.0.custom_field_id",
            "Affected Team",
        ),
        (
            [entry(CUSTOM_FIELD_DATA_ASSET_ID, {"value_link": "https://x"})],
            "custom_field_entries.0.values.0",
            "value_text",
        ),
        (
            [entry(CUSTOM_FIELD_RUNBOOK_ID, {"value_text": "x", "value_link": "y"})],
            "custom_field_entries.0.values.0",
            "value_link",
        ),
        (
            [entry(CUSTOM_FIELD_AFFECTED_ROWS_ID, {"value_numeric": "many"})],
            "custom_field_entries.0.values.0.value_numeric",
            "not a number",
        ),
        (
            [entry(CUSTOM_FIELD_TEAM_ID, {"value_text": "Payments"})],
            "custom_field_entries.0.values.0",
            "value_option_id",
        ),
        (
            [entry(CUSTOM_FIELD_TEAM_ID, {"value_option_id": "01NOSUCHOPTION"})],
            "custom_field_entries.0.values.0.value_option_id",
            "Payments",
        ),
        (
            [entry(CUSTOM_FIELD_DATA_ASSET_ID, {"value_text": "a"}, {"value_text": "b"})],
            "custom_field_entries.0.values",
            "one value",
        ),
        (
            [entry(CUSTOM_FIELD_DATA_ASSET_ID, {"value_catalog_entry_id": "01CAT"})],
            "custom_field_entries.0.values.0",
            "value_catalog_entry_id",
        ),
        (
            [entry(CUSTOM_FIELD_DATA_ASSET_ID, {"value_text": 7})],
            "custom_field_entries.0.values.0.value_text",
            "string",
        ),
        ([{"values": []}], "custom_field_entries.0.custom_field_id", "required"),
    ],
)
async def test_a_create_with_a_wrong_custom_field_entry_is_422_naming_it(
    simulator: Simulator, http: httpx.AsyncClient, entries: list[dict[str, Any]], field: str, words: str
) -> None:
    body = {"idempotency_key": "k", "visibility": "public", "custom_field_entries": entries}

    response = await http.post("/v2/incidents", json=body)

    assert response.status_code == 422
    assert response.json()["type"] == "validation_error"
    detail = only_error(response)
    assert detail["source"]["field"] == field
    assert words in detail["message"]
    assert simulator.incidents == []


async def test_an_edit_with_a_wrong_entry_is_422_under_incident_and_changes_nothing(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    created = await create(http)

    response = await edit(
        http,
        created["id"],
        name="not applied",
        custom_field_entries=[entry(CUSTOM_FIELD_TEAM_ID, {"value_option_id": "01NOSUCHOPTION"})],
    )

    assert response.status_code == 422
    assert only_error(response)["source"]["field"] == "incident.custom_field_entries.0.values.0.value_option_id"
    assert simulator.incident(created["id"]) == created
    assert simulator.incident_edits(created["id"]) == []


async def test_every_wrong_entry_is_named_at_once(http: httpx.AsyncClient) -> None:
    body = {
        "idempotency_key": "k",
        "visibility": "public",
        "custom_field_entries": [
            entry("01NOSUCHFIELD0000000000000", {"value_text": "x"}),
            entry(CUSTOM_FIELD_AFFECTED_ROWS_ID, {"value_numeric": "x"}),
        ],
    }

    response = await http.post("/v2/incidents", json=body)

    assert [error["source"]["field"] for error in response.json()["errors"]] == [
        "custom_field_entries.0.custom_field_id",
        "custom_field_entries.1.values.0.value_numeric",
    ]


async def test_configured_custom_fields_replace_the_seeded_ones(clock: FakeClock) -> None:
    only = CustomFieldSeed("01FIELD", "Tier", "single_select", "", (CustomFieldOptionSeed("01OPT", "gold", 1),))
    sim = Simulator(SimulatorConfig(rate_limit_per_minute=None, custom_fields=[only]), clock=clock)
    sim.set_key(KEY, name="reader", roles=["viewer"])
    async with sim, httpx.AsyncClient(base_url=sim.url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        fields = (await http.get("/v2/custom_fields")).json()["custom_fields"]
        options = (await http.get("/v1/custom_field_options", params={"custom_field_id": "01FIELD"})).json()

    assert [field["name"] for field in fields] == ["Tier"]
    assert json.dumps(options["custom_field_options"]) == json.dumps(
        [{"id": "01OPT", "custom_field_id": "01FIELD", "value": "gold", "sort_key": 1}]
    )
