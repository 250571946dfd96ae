"""The simulator's alert sources over loopback: show, alert events (auth, checks, deduplication, limits), heartbeats."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import asdict
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from incidentio_operator.standins.simulator import (
    AlertSourceConfig,
    HeartbeatAlert,
    HeartbeatSettings,
    Simulator,
    SimulatorConfig,
)

KEY = "inc_live_alertsources_5d4c3b2a1f0e"
HTTP_ID = "01GW2G3V0S59R238FAHPDS1R66"
OTHER_HTTP_ID = "01GW2G3V0S59R238FAHPDS1R68"
HEARTBEAT_ID = "01GW2G3V0S59R238FAHPDS1R67"
HTTP_TOKEN = "as-token-9a8b7c6d5e4f3a2b"
OTHER_TOKEN = "as-token-other-1b2c3d4e5f6a"
HEARTBEAT_TOKEN = "hb-token-0f1e2d3c4b5a6978"
TOKENS = (HTTP_TOKEN, OTHER_TOKEN, HEARTBEAT_TOKEN)
EVENTS = f"/v2/alert_events/http/{HTTP_ID}"
PING = f"/v2/heartbeat/{HEARTBEAT_ID}/ping"


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def simulator(clock: FakeClock) -> AsyncIterator[Simulator]:
    config = SimulatorConfig(rate_limit_per_minute=None)
    config.alert_sources[HTTP_ID] = AlertSourceConfig(HTTP_ID, "data alerts", HTTP_TOKEN)
    config.alert_sources[OTHER_HTTP_ID] = AlertSourceConfig(OTHER_HTTP_ID, "other alerts", OTHER_TOKEN)
    sim = Simulator(config, clock=clock)
    sim.set_alert_source(
        AlertSourceConfig(
            HEARTBEAT_ID,
            "operator heartbeat",
            HEARTBEAT_TOKEN,
            "heartbeat",
            HeartbeatSettings(interval_seconds=60, grace_period_seconds=30),
        )
    )
    sim.set_key(KEY, name="reader", roles=["viewer"])
    async with sim:
        yield sim


@pytest.fixture
async def http(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=simulator.url, timeout=5.0) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def event(status: str = "firing", key: str = "alert-1/dest/1", **fields: Any) -> dict[str, Any]:
    return {"status": status, "title": "Column removed", "deduplication_key": key, **fields}


def only_error(response: httpx.Response) -> dict[str, Any]:
    errors: list[dict[str, Any]] = response.json()["errors"]
    assert len(errors) == 1, errors
    return errors[0]


# --- GET /v2/alert_sources/{id} -----------------------------------------------------------------------


async def test_show_returns_the_http_source_with_its_events_url(simulator: Simulator, http: httpx.AsyncClient) -> None:
    response = await http.get(f"/v2/alert_sources/{HTTP_ID}", headers=bearer(KEY))

    assert response.status_code == 200
    source = response.json()["alert_source"]
    assert (source["id"], source["name"], source["source_type"]) == (HTTP_ID, "data alerts", "http")
    assert source["alert_events_url"] == f"{simulator.url}{EVENTS}"
    assert "heartbeat_options" not in source


async def test_show_returns_a_heartbeat_source_with_its_options(simulator: Simulator, http: httpx.AsyncClient) -> None:
    response = await http.get(f"/v2/alert_sources/{HEARTBEAT_ID}", headers=bearer(KEY))

    source = response.json()["alert_source"]
    assert source["source_type"] == "heartbeat"
    assert source["heartbeat_options"] == {
        "interval_seconds": 60,
        "grace_period_seconds": 30,
        "failure_threshold": 1,
        "ping_url": f"{simulator.url}{PING}",
    }


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), (bearer("not-a-key"), 401), (bearer(HTTP_TOKEN), 401)],
)
async def test_show_takes_an_api_key_not_an_alert_source_token(
    http: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    response = await http.get(f"/v2/alert_sources/{HTTP_ID}", headers=headers)

    assert response.status_code == status
    assert response.json()["type"] == "authentication_error"


async def test_show_of_an_unknown_source_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/v2/alert_sources/01NOSUCHSOURCE000000000000", headers=bearer(KEY))

    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


async def test_show_needs_the_viewer_role(simulator: Simulator, http: httpx.AsyncClient) -> None:
    simulator.set_key(KEY, name="creator", roles=["incident_creator"])

    response = await http.get(f"/v2/alert_sources/{HTTP_ID}", headers=bearer(KEY))

    assert response.status_code == 403
    assert "'viewer'" in only_error(response)["message"]


# --- POST /v2/alert_events/http/{id}: auth and validation ---------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        (bearer(HTTP_TOKEN), {}),
        (basic("incident", HTTP_TOKEN), {}),
        (basic(HTTP_TOKEN, ""), {}),
        ({}, {"token": HTTP_TOKEN}),
    ],
    ids=["bearer", "basic-password", "basic-user", "query"],
)
async def test_an_event_is_accepted_with_the_token_in_any_form_the_spec_allows(
    simulator: Simulator, http: httpx.AsyncClient, headers: dict[str, str], query: dict[str, str]
) -> None:
    response = await http.post(EVENTS, json=event(), headers=headers, params=query)

    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event accepted for processing",
        "deduplication_key": "alert-1/dest/1",
    }
    assert [e.title for e in simulator.alert_events(HTTP_ID)] == ["Column removed"]


@pytest.mark.parametrize(
    ("headers", "query", "code"),
    [
        ({}, {}, "missing_authorization_material"),
        (bearer("wrong-token"), {}, "invalid_authorization_material"),
        (bearer(OTHER_TOKEN), {}, "invalid_authorization_material"),
        (bearer(KEY), {}, "invalid_authorization_material"),
        (basic("incident", "wrong"), {}, "invalid_authorization_material"),
        ({"Authorization": "Basic !!!"}, {}, "invalid_authorization_material"),
        ({"Authorization": HTTP_TOKEN}, {}, "invalid_authorization_material"),
        ({}, {"token": "wrong"}, "invalid_authorization_material"),
    ],
)
async def test_a_missing_or_wrong_token_is_401_and_nothing_is_received(
    simulator: Simulator, http: httpx.AsyncClient, headers: dict[str, str], query: dict[str, str], code: str
) -> None:
    response = await http.post(EVENTS, json=event(), headers=headers, params=query)

    assert response.status_code == 401
    assert response.json()["type"] == "authentication_error"
    assert only_error(response)["code"] == code
    assert simulator.alert_events(HTTP_ID) == [] and simulator.alerts(HTTP_ID) == []


@pytest.mark.parametrize("source_id", ["01NOSUCHSOURCE000000000000", HEARTBEAT_ID])
async def test_events_for_an_unknown_or_non_http_source_are_404(http: httpx.AsyncClient, source_id: str) -> None:
    response = await http.post(f"/v2/alert_events/http/{source_id}", json=event(), headers=bearer(HEARTBEAT_TOKEN))

    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"status": "firing", "deduplication_key": "k"}, "title", "is_required"),
        ({"title": "t", "deduplication_key": "k"}, "status", "is_required"),
        (event(status="acknowledged"), "status", "invalid_value"),
        (event(title=7), "title", "invalid_type"),
        (event(metadata=["not", "an", "object"]), "metadata", "invalid_type"),
        ({"status": "firing", "title": "t"}, "deduplication_key", "is_required"),
    ],
)
async def test_an_invalid_event_is_422_naming_the_field(
    simulator: Simulator, http: httpx.AsyncClient, body: dict[str, Any], field: str, code: str
) -> None:
    response = await http.post(EVENTS, json=body, headers=bearer(HTTP_TOKEN))

    assert response.status_code == 422
    assert response.json()["type"] == "validation_error"
    detail = only_error(response)
    assert (detail["code"], detail["source"]["field"]) == (code, field)
    assert simulator.alerts(HTTP_ID) == []


async def test_malformed_json_is_400(http: httpx.AsyncClient) -> None:
    response = await http.post(EVENTS, content=b"{", headers={**bearer(HTTP_TOKEN), "Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["type"] == "bad_request"


# --- deduplication --------------------------------------------------------------------------------------


async def test_one_alert_per_key_while_firing_resolved_by_the_same_key_and_a_new_one_after(
    simulator: Simulator, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    async def send(body: dict[str, Any]) -> None:
        clock.now += 1
        assert (await http.post(EVENTS, json=body, headers=bearer(HTTP_TOKEN))).status_code == 202

    await send(event(description="first"))
    await send(event(description="escalated", metadata={"severity": "critical"}))
    await send(event(key="alert-2/dest/1"))
    after_two_firing = simulator.alerts(HTTP_ID)
    await send(event(status="resolved"))
    await send(event(status="resolved", key="never-fired"))
    await send(event(description="re-triggered"))

    assert [(a.deduplication_key, a.status, a.event_count) for a in after_two_firing] == [
        ("alert-1/dest/1", "firing", 2),
        ("alert-2/dest/1", "firing", 1),
    ]
    alerts = simulator.alerts(HTTP_ID)
    assert [(a.deduplication_key, a.status, a.event_count, a.description) for a in alerts] == [
        ("alert-1/dest/1", "resolved", 3, "escalated"),
        ("alert-2/dest/1", "firing", 1, None),
        ("alert-1/dest/1", "firing", 1, "re-triggered"),
    ]
    first = alerts[0]
    assert (first.created_at, first.resolved_at) == (5001.0, 5004.0)
    assert alerts[0].metadata == {"severity": "critical"}
    assert len({alert.id for alert in alerts}) == 3
    events = simulator.alert_events(HTTP_ID)
    assert [(e.status, e.deduplication_key, e.at) for e in events] == [
        ("firing", "alert-1/dest/1", 5001.0),
        ("firing", "alert-1/dest/1", 5002.0),
        ("firing", "alert-2/dest/1", 5003.0),
        ("resolved", "alert-1/dest/1", 5004.0),
        ("resolved", "never-fired", 5005.0),
        ("firing", "alert-1/dest/1", 5006.0),
    ]


async def test_the_same_key_on_two_sources_is_two_alerts(simulator: Simulator, http: httpx.AsyncClient) -> None:
    await http.post(EVENTS, json=event(), headers=bearer(HTTP_TOKEN))
    await http.post(f"/v2/alert_events/http/{OTHER_HTTP_ID}", json=event(), headers=bearer(OTHER_TOKEN))

    assert [a.source_id for a in simulator.alerts(HTTP_ID)] == [HTTP_ID]
    assert [a.source_id for a in simulator.alerts(OTHER_HTTP_ID)] == [OTHER_HTTP_ID]


# --- per-source rate limit, faults -------------------------------------------------------------------


async def test_each_source_takes_120_events_a_minute_then_429_with_retry_after(
    simulator: Simulator, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    accepted = [await http.post(EVENTS, json=event(key=str(n)), headers=bearer(HTTP_TOKEN)) for n in range(120)]
    refused = await http.post(EVENTS, json=event(key="121"), headers=bearer(HTTP_TOKEN))
    other = await http.post(f"/v2/alert_events/http/{OTHER_HTTP_ID}", json=event(), headers=bearer(OTHER_TOKEN))
    clock.now += 0.5
    refill = await http.post(EVENTS, json=event(key="after-refill"), headers=bearer(HTTP_TOKEN))

    assert {response.status_code for response in accepted} == {202}
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    body = refused.json()
    assert body["type"] == "too_many_requests"
    assert body["rate_limit"]["name"] == "data alerts" and body["rate_limit"]["limit"] == 120
    assert other.status_code == 202
    assert refill.status_code == 202
    assert len(simulator.alert_events(HTTP_ID)) == 121


async def test_the_alert_source_429_can_say_retry_after_as_an_http_date(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    simulator.config.alert_events_per_minute, simulator.config.alert_events_refill_per_second = 1, 0.1
    simulator.config.retry_after_form = "http-date"
    await http.post(EVENTS, json=event(), headers=bearer(HTTP_TOKEN))

    refused = await http.post(EVENTS, json=event(), headers=bearer(HTTP_TOKEN))

    assert refused.status_code == 429
    assert re.match(r"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$", refused.headers["Retry-After"])
    wait = (
        parsedate_to_datetime(refused.headers["Retry-After"]).timestamp()
        - parsedate_to_datetime(refused.headers["Date"]).timestamp()
    )
    assert 5 <= wait <= 12


async def test_faults_apply_to_alert_events_by_operation_name(simulator: Simulator, http: httpx.AsyncClient) -> None:
    simulator.faults.fail_next(1, status=503, operation="create_alert_event", retry_after="3")
    simulator.faults.lose_response_next(1, operation="create_alert_event")

    failed = await http.post(EVENTS, json=event(key="failed"), headers=bearer(HTTP_TOKEN))
    lost = await http.post(EVENTS, json=event(key="lost"), headers=bearer(HTTP_TOKEN))

    assert (failed.status_code, failed.headers["Retry-After"]) == (503, "3")
    assert lost.status_code == 502
    # A lost response still took effect, as in incident.io: the retry finds the alert already firing.
    assert [a.deduplication_key for a in simulator.alerts(HTTP_ID)] == ["lost"]


async def test_an_injected_429_names_the_source(simulator: Simulator, http: httpx.AsyncClient) -> None:
    simulator.faults.fail_next(1, status=429, operation="create_alert_event", retry_after="2")

    response = await http.post(EVENTS, json=event(), headers=bearer(HTTP_TOKEN))

    assert response.status_code == 429
    assert response.json()["rate_limit"]["name"] == "data alerts"


# --- heartbeats -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_ping_is_204_with_the_token_as_bearer_or_query(
    simulator: Simulator, http: httpx.AsyncClient, clock: FakeClock, method: str
) -> None:
    by_header = await http.request(method, PING, headers=bearer(HEARTBEAT_TOKEN))
    clock.now += 10
    by_query = await http.request(method, PING, params={"token": HEARTBEAT_TOKEN})

    assert (by_header.status_code, by_query.status_code) == (204, 204)
    assert by_header.content == b""
    assert simulator.heartbeat(HEARTBEAT_ID).pings == (5000.0, 5010.0)


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        (PING, {}, 401),
        (PING, bearer("wrong"), 401),
        (PING, bearer(HTTP_TOKEN), 401),
        (PING, basic("x", HEARTBEAT_TOKEN), 401),
        (f"/v2/heartbeat/{HTTP_ID}/ping", bearer(HTTP_TOKEN), 404),
        ("/v2/heartbeat/01NOSUCHSOURCE000000000000/ping", bearer(HEARTBEAT_TOKEN), 404),
    ],
)
async def test_a_ping_without_the_right_token_or_source_is_refused(
    simulator: Simulator, http: httpx.AsyncClient, path: str, headers: dict[str, str], status: int
) -> None:
    response = await http.post(path, headers=headers)

    assert response.status_code == status
    assert response.json()["status"] == status
    assert simulator.heartbeat(HEARTBEAT_ID).pings == ()


async def test_a_heartbeat_is_missed_once_no_ping_came_within_interval_and_grace(
    simulator: Simulator, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    assert not simulator.heartbeat(HEARTBEAT_ID).missed  # no ping yet: nothing to miss
    await http.post(PING, headers=bearer(HEARTBEAT_TOKEN))
    clock.now += 90
    on_the_edge = simulator.heartbeat(HEARTBEAT_ID)
    clock.now += 1
    missed = simulator.heartbeat(HEARTBEAT_ID)
    clock.now += 100
    await http.post(PING, headers=bearer(HEARTBEAT_TOKEN))
    recovered = simulator.heartbeat(HEARTBEAT_ID)

    assert not on_the_edge.missed and on_the_edge.alerts == ()
    assert missed.missed and missed.alerts == (HeartbeatAlert(fired_at=5090.0, resolved_at=None),)
    assert not recovered.missed
    assert recovered.alerts == (HeartbeatAlert(fired_at=5090.0, resolved_at=5191.0),)


async def test_the_failure_threshold_widens_the_window(simulator: Simulator, clock: FakeClock) -> None:
    simulator.set_alert_source(
        AlertSourceConfig(
            HEARTBEAT_ID, "tolerant", HEARTBEAT_TOKEN, "heartbeat", HeartbeatSettings(60, failure_threshold=3)
        )
    )
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        await http.post(PING, headers=bearer(HEARTBEAT_TOKEN))
    clock.now += 180
    assert not simulator.heartbeat(HEARTBEAT_ID).missed
    clock.now += 1
    assert simulator.heartbeat(HEARTBEAT_ID).missed


async def test_heartbeat_inspection_is_only_for_heartbeat_sources(simulator: Simulator) -> None:
    with pytest.raises(KeyError):
        simulator.heartbeat(HTTP_ID)
    with pytest.raises(ValueError, match="heartbeat"):
        AlertSourceConfig("x", "x", "t", "heartbeat")


# --- admin endpoints and secrecy ----------------------------------------------------------------------


async def test_admin_endpoints_show_sources_events_alerts_and_heartbeats(
    simulator: Simulator, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    await http.post(EVENTS, json=event(metadata={"team": "payments"}), headers=bearer(HTTP_TOKEN))
    await http.post(PING, headers=bearer(HEARTBEAT_TOKEN))
    clock.now += 91

    sources = (await http.get("/_simulator/alert_sources")).json()["alert_sources"]
    events = (await http.get(f"/_simulator/alert_sources/{HTTP_ID}/events")).json()["events"]
    alerts = (await http.get(f"/_simulator/alert_sources/{HTTP_ID}/alerts")).json()["alerts"]
    heartbeat = (await http.get(f"/_simulator/heartbeats/{HEARTBEAT_ID}")).json()["heartbeat"]
    unknown = await http.get(f"/_simulator/heartbeats/{HTTP_ID}")

    assert [(s["id"], s["source_type"]) for s in sources] == [
        (HTTP_ID, "http"),
        (OTHER_HTTP_ID, "http"),
        (HEARTBEAT_ID, "heartbeat"),
    ]
    assert sources[2]["heartbeat"]["interval_seconds"] == 60
    assert events == [asdict(e) for e in simulator.alert_events(HTTP_ID)]
    assert events[0]["metadata"] == {"team": "payments"}
    assert [(a["status"], a["event_count"]) for a in alerts] == [("firing", 1)]
    assert heartbeat["missed"] is True and heartbeat["pings"] == [5000.0]
    assert unknown.status_code == 404 and unknown.json()["type"] == "not_found"


async def test_no_token_appears_in_records_admin_answers_reprs_or_logs(
    simulator: Simulator, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await http.post(EVENTS, json=event(), params={"token": HTTP_TOKEN})
    await http.post(EVENTS, json=event(), headers=basic("u", HTTP_TOKEN))
    await http.post(EVENTS, json=event(), headers=bearer("wrong-" + HTTP_TOKEN))
    await http.get(PING, params={"token": HEARTBEAT_TOKEN})
    await http.post(PING, headers=bearer(HEARTBEAT_TOKEN))
    admin = [
        (await http.get(path)).text
        for path in (
            "/_simulator/requests",
            "/_simulator/alert_sources",
            f"/_simulator/alert_sources/{HTTP_ID}/events",
            f"/_simulator/alert_sources/{HTTP_ID}/alerts",
            f"/_simulator/heartbeats/{HEARTBEAT_ID}",
        )
    ]

    # The test's own HTTP client logs the URLs it calls, query strings and all; the simulator's records count.
    ours = [record for record in caplog.records if record.name.startswith("incidentio_operator")]
    recorded = simulator.requests
    assert [(r.operation, r.status, r.alert_source_id, r.key_name) for r in recorded] == [
        ("create_alert_event", 202, HTTP_ID, None),
        ("create_alert_event", 202, HTTP_ID, None),
        ("create_alert_event", 401, None, None),
        ("ping_heartbeat_get", 204, HEARTBEAT_ID, None),
        ("ping_heartbeat", 204, HEARTBEAT_ID, None),
    ]
    texts = [
        *admin,
        repr(recorded),
        json.dumps([asdict(entry) for entry in recorded]),
        repr(simulator.config),
        repr(list(simulator.config.alert_sources.values())),
        repr(simulator.alert_events(HTTP_ID)),
        repr(simulator.alerts(HTTP_ID)),
        repr(simulator.heartbeat(HEARTBEAT_ID)),
        *(record.getMessage() for record in ours),
    ]
    assert len(ours) >= 5
    for token in TOKENS:
        assert not [text for text in texts if token in text]
