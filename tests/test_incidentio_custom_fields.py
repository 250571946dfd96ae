"""The client's custom fields and incident reads over loopback: listings, pagination, entries, status, edits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from incidentio_operator.incidentio import (
    Account,
    ApiKey,
    CreateIncidentRequest,
    CustomField,
    CustomFieldEntryPayload,
    CustomFieldValuePayload,
    EditIncidentRequest,
    IncidentIoClient,
    NotFound,
    UnexpectedResponse,
    ValidationFailed,
)
from incidentio_operator.standins.simulator import (
    CLOSED_STATUS_ID,
    CUSTOM_FIELD_AFFECTED_ROWS_ID,
    CUSTOM_FIELD_DATA_ASSET_ID,
    CUSTOM_FIELD_ENVIRONMENTS_ID,
    CUSTOM_FIELD_RUNBOOK_ID,
    CUSTOM_FIELD_TEAM_ID,
    DEFAULT_ROLES,
    INVESTIGATING_STATUS_ID,
    SEVERITY_CRITICAL_ID,
    SEVERITY_MINOR_ID,
    ApiKeyConfig,
    CustomFieldOptionSeed,
    CustomFieldSeed,
    Simulator,
    SimulatorConfig,
)

pytestmark = pytest.mark.timeout(60)

SECRET = "sk-live-CustomFields-8u7y6t5r"
MANY_ID = "01FCNDV6P870EA6S7TK1DSYMNY"


def many_options_field() -> CustomFieldSeed:
    options = tuple(CustomFieldOptionSeed(f"01OPT{n:021d}", f"Option {n}", n) for n in range(1, 261))
    return CustomFieldSeed(MANY_ID, "Data Product", "single_select", "One of many", options)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimulatorConfig(keys={SECRET: ApiKeyConfig("ci", DEFAULT_ROLES)}, rate_limit_per_minute=None)
    config.custom_fields.append(many_options_field())
    async with Simulator(config) as simulator:
        yield simulator


@pytest.fixture
def account(sim: Simulator) -> Account:
    return Account(base_url=sim.url, api_key=ApiKey(SECRET))


@pytest.fixture
async def client() -> AsyncIterator[IncidentIoClient]:
    async with IncidentIoClient(timeout=5.0) as incident_io:
        yield incident_io


def option(sim: Simulator, field_id: str, value: str) -> str:
    field = next(field for field in sim.config.custom_fields if field.id == field_id)
    return next(option.id for option in field.options if option.value == value)


async def test_custom_fields_are_listed_typed(client: IncidentIoClient, account: Account) -> None:
    fields = await client.list_custom_fields(account)

    by_id = {field.id: field for field in fields}
    assert by_id[CUSTOM_FIELD_TEAM_ID] == CustomField(
        CUSTOM_FIELD_TEAM_ID, "Affected Team", "single_select", "Which team is impacted by this issue"
    )
    assert [by_id[i].field_type for i in (CUSTOM_FIELD_ENVIRONMENTS_ID, CUSTOM_FIELD_DATA_ASSET_ID)] == [
        "multi_select",
        "text",
    ]
    assert [field.takes_options for field in fields] == [
        field.field_type in ("single_select", "multi_select") for field in fields
    ]


async def test_options_are_listed_across_pages(client: IncidentIoClient, account: Account, sim: Simulator) -> None:
    options = await client.list_custom_field_options(account, MANY_ID)
    team = await client.list_custom_field_options(account, CUSTOM_FIELD_TEAM_ID)
    text = await client.list_custom_field_options(account, CUSTOM_FIELD_DATA_ASSET_ID)

    assert [o.value for o in options] == [f"Option {n}" for n in range(1, 261)]
    assert {o.custom_field_id for o in options} == {MANY_ID}
    pages = [r for r in sim.requests if r.operation == "list_custom_field_options"]
    assert len(pages) == 4  # two pages for the long field, one each for the others
    assert [(o.value, o.sort_key) for o in team] == [("Data Platform", 10), ("Payments", 20), ("Growth", 30)]
    assert text == []
    with pytest.raises(NotFound):
        await client.list_custom_field_options(account, "01NOSUCHFIELD")


def paged(pages: dict[str | None, dict[str, Any]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        assert query["custom_field_id"] == ["01F"] and query["page_size"] == ["250"]
        return httpx.Response(200, json=pages[query.get("after", [None])[0]])

    return httpx.MockTransport(answer)


def page(*ids: str, after: str | None = None) -> dict[str, Any]:
    options = [{"id": i, "custom_field_id": "01F", "value": i, "sort_key": 1} for i in ids]
    return {
        "custom_field_options": options,
        "pagination_meta": {"page_size": 250, **({"after": after} if after else {})},
    }


async def test_pagination_ends_on_an_empty_page_even_when_the_last_names_an_after() -> None:
    account = Account("https://api.incident.example", ApiKey(SECRET))
    transport = paged({None: page("a", "b", after="b"), "b": page("c", after="c"), "c": page(after="c")})
    async with IncidentIoClient(transport=transport) as client:
        options = await client.list_custom_field_options(account, "01F")

    assert [o.id for o in options] == ["a", "b", "c"]


async def test_pagination_that_repeats_itself_is_an_unexpected_response() -> None:
    account = Account("https://api.incident.example", ApiKey(SECRET))
    transport = paged({None: page("a", after="a"), "a": page("b", after="a")})
    async with IncidentIoClient(transport=transport) as client:
        with pytest.raises(UnexpectedResponse, match="repeated the page"):
            await client.list_custom_field_options(account, "01F")


async def test_an_incident_is_created_and_read_with_its_custom_fields_status_and_severity(
    client: IncidentIoClient, account: Account, sim: Simulator
) -> None:
    payments = option(sim, CUSTOM_FIELD_TEAM_ID, "Payments")
    production = option(sim, CUSTOM_FIELD_ENVIRONMENTS_ID, "production")
    entries = (
        CustomFieldEntryPayload(CUSTOM_FIELD_TEAM_ID, (CustomFieldValuePayload.option(payments),)),
        CustomFieldEntryPayload(CUSTOM_FIELD_ENVIRONMENTS_ID, (CustomFieldValuePayload.option(production),)),
        CustomFieldEntryPayload(CUSTOM_FIELD_DATA_ASSET_ID, (CustomFieldValuePayload.text("sales.orders"),)),
        CustomFieldEntryPayload(CUSTOM_FIELD_RUNBOOK_ID, (CustomFieldValuePayload.link("https://r.example"),)),
        CustomFieldEntryPayload(CUSTOM_FIELD_AFFECTED_ROWS_ID, (CustomFieldValuePayload.numeric("42"),)),
    )
    request = CreateIncidentRequest("alert-1/d/1", "n", severity_id=SEVERITY_MINOR_ID, custom_field_entries=entries)

    created = await client.create_incident(account, request)
    shown = await client.get_incident(account, created.id)

    assert shown == created
    assert (shown.incident_status.id, shown.incident_status.category) == (INVESTIGATING_STATUS_ID, "live")
    assert not shown.incident_status.is_terminal
    assert shown.severity is not None and shown.severity.id == SEVERITY_MINOR_ID
    by_name = {entry.custom_field.name: entry for entry in shown.custom_field_entries}
    team = by_name["Affected Team"]
    assert team.custom_field.field_type == "single_select"
    assert [(v.value_option.id, v.value_option.value) for v in team.values if v.value_option] == [
        (payments, "Payments")
    ]
    assert by_name["Data Asset"].values[0].value_text == "sales.orders"
    assert by_name["Runbook"].values[0].value_link == "https://r.example"
    assert by_name["Affected Rows"].values[0].value_numeric == "42"
    # What an incident holds reads back as what was sent, so a caller can tell whether an edit changes anything.
    assert {entry.as_payload() for entry in shown.custom_field_entries} == set(entries)


@pytest.mark.parametrize("category", ["closed", "declined", "merged", "canceled"])
async def test_an_incident_a_responder_ended_reads_as_terminal_and_refuses_another_status(
    client: IncidentIoClient, account: Account, sim: Simulator, category: str
) -> None:
    created = await client.create_incident(account, CreateIncidentRequest("k", "n"))
    sim.set_incident_status(created.id, category=category)

    shown = await client.get_incident(account, created.id)
    with pytest.raises(ValidationFailed) as caught:
        await client.edit_incident(account, created.id, EditIncidentRequest(incident_status_id=INVESTIGATING_STATUS_ID))

    assert shown.incident_status.category == category and shown.incident_status.is_terminal
    assert shown.incident_status.is_closed == (category == "closed")
    assert caught.value.fields == ("incident.incident_status_id",)
    assert "can no longer be changed" in str(caught.value)


async def test_a_deleted_incident_is_not_found(client: IncidentIoClient, account: Account, sim: Simulator) -> None:
    created = await client.create_incident(account, CreateIncidentRequest("k", "n"))
    sim.delete_incident(created.id)

    with pytest.raises(NotFound):
        await client.get_incident(account, created.id)
    with pytest.raises(NotFound):
        await client.edit_incident(account, created.id, EditIncidentRequest(incident_status_id=CLOSED_STATUS_ID))


async def test_an_edit_sends_only_what_changed(client: IncidentIoClient, account: Account, sim: Simulator) -> None:
    growth = option(sim, CUSTOM_FIELD_TEAM_ID, "Growth")
    created = await client.create_incident(account, CreateIncidentRequest("k", "old name", summary="old"))
    changes = EditIncidentRequest(
        severity_id=SEVERITY_CRITICAL_ID,
        name="new name",
        custom_field_entries=(
            CustomFieldEntryPayload(CUSTOM_FIELD_TEAM_ID, (CustomFieldValuePayload.option(growth),)),
            CustomFieldEntryPayload(CUSTOM_FIELD_RUNBOOK_ID),
        ),
        notify_incident_channel=True,
    )

    edited = await client.edit_incident(account, created.id, changes)

    assert sim.requests[-1].body == {
        "incident": {
            "severity_id": SEVERITY_CRITICAL_ID,
            "name": "new name",
            "custom_field_entries": [
                {"custom_field_id": CUSTOM_FIELD_TEAM_ID, "values": [{"value_option_id": growth}]},
                {"custom_field_id": CUSTOM_FIELD_RUNBOOK_ID, "values": []},
            ],
        },
        "notify_incident_channel": True,
    }
    assert (edited.name, edited.summary) == ("new name", "old")
    assert edited.severity is not None and edited.severity.id == SEVERITY_CRITICAL_ID
    (edit,) = sim.incident_edits(created.id)
    assert edit.fields == sim.requests[-1].body["incident"] and edit.notify_incident_channel


async def test_a_wrong_custom_field_value_is_a_validation_failure_naming_it(
    client: IncidentIoClient, account: Account
) -> None:
    wrong = (CustomFieldEntryPayload(CUSTOM_FIELD_AFFECTED_ROWS_ID, (CustomFieldValuePayload.numeric("lots"),)),)

    with pytest.raises(ValidationFailed) as caught:
        await client.create_incident(account, CreateIncidentRequest("k", "n", custom_field_entries=wrong))

    assert caught.value.fields == ("custom_field_entries.0.values.0.value_numeric",)
    assert "not a number" in str(caught.value)
