"""The incident.io simulator over loopback: auth, validation, idempotency, lookups, rules, secrecy, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from incidentio_operator.standins.servers import BackgroundLoop
from incidentio_operator.standins.simulator import (
    CLOSED_STATUS_ID,
    DOCUMENTING_STATUS_ID,
    INVESTIGATING_STATUS_ID,
    SEVERITY_CRITICAL_ID,
    SEVERITY_MAJOR_ID,
    Simulator,
    SimulatorConfig,
)

FULL_KEY = "inc_live_full_7c1d0f5e2a9b4c8d"
VIEWER_KEY = "inc_live_viewer_3b2a1c0d9e8f7a6b"
CREATOR_KEY = "inc_live_creator_5e4d3c2b1a0f9e8d"
ALL_KEYS = (FULL_KEY, VIEWER_KEY, CREATOR_KEY)


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    sim = Simulator(SimulatorConfig(rate_limit_per_minute=None))
    sim.set_key(FULL_KEY, name="full", roles=["viewer", "incident_creator", "incident_editor"])
    sim.set_key(VIEWER_KEY, name="viewer-only", roles=["viewer"])
    sim.set_key(CREATOR_KEY, name="creator-only", roles=["incident_creator"])
    async with sim:
        yield sim


def client(sim: Simulator, key: str | None = FULL_KEY) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.AsyncClient(base_url=sim.url, headers=headers, timeout=5.0)


def incident_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "idempotency_key": "alert-1/dest/1",
        "visibility": "public",
        "mode": "standard",
        "name": "[AnomalyArmor] Column customer_id removed from orders",
        "summary": "Source: AnomalyArmor",
    }
    body.update(overrides)
    return body


def close_body(status_id: str = CLOSED_STATUS_ID) -> dict[str, Any]:
    return {"incident": {"incident_status_id": status_id}, "notify_incident_channel": True}


def only_error(response: httpx.Response) -> dict[str, Any]:
    errors: list[dict[str, Any]] = response.json()["errors"]
    assert len(errors) == 1, errors
    return errors[0]


# --- auth -----------------------------------------------------------------------------------------


async def test_missing_authorization_is_401_missing_material(simulator: Simulator) -> None:
    async with client(simulator, key=None) as http:
        response = await http.get("/v1/identity")
    assert response.status_code == 401
    assert response.json()["type"] == "authentication_error"
    assert only_error(response)["code"] == "missing_authorization_material"


@pytest.mark.parametrize("header", ["Bearer not-a-key", "Basic " + FULL_KEY, FULL_KEY])
async def test_unknown_key_or_scheme_is_401_invalid_material(simulator: Simulator, header: str) -> None:
    async with httpx.AsyncClient(base_url=simulator.url, headers={"Authorization": header}) as http:
        response = await http.get("/v1/identity")
    assert response.status_code == 401
    assert only_error(response)["code"] == "invalid_authorization_material"


async def test_revoked_key_is_refused(simulator: Simulator) -> None:
    simulator.revoke_key(VIEWER_KEY)
    async with client(simulator, VIEWER_KEY) as http:
        response = await http.get("/v1/severities")
    assert response.status_code == 401


async def test_identity_returns_the_key_name_and_roles_for_any_valid_key(simulator: Simulator) -> None:
    async with client(simulator, CREATOR_KEY) as http:
        response = await http.get("/v1/identity")
    assert response.status_code == 200
    identity = response.json()["identity"]
    assert identity["name"] == "creator-only"
    assert identity["roles"] == ["incident_creator"]


@pytest.mark.parametrize(
    ("key", "method", "path", "body", "role"),
    [
        (CREATOR_KEY, "GET", "/v1/incident_statuses", None, "viewer"),
        (CREATOR_KEY, "GET", "/v1/severities", None, "viewer"),
        (CREATOR_KEY, "GET", "/v2/incidents/1", None, "viewer"),
        (VIEWER_KEY, "POST", "/v2/incidents", incident_body(), "incident_creator"),
        (VIEWER_KEY, "POST", "/v2/incidents/x/actions/edit", close_body(), "incident_editor"),
    ],
)
async def test_missing_role_is_403_naming_the_role(
    simulator: Simulator, key: str, method: str, path: str, body: Any, role: str
) -> None:
    async with client(simulator, key) as http:
        response = await http.request(method, path, json=body)
    assert response.status_code == 403
    assert response.json()["type"] == "authorization_error"
    assert f"'{role}'" in only_error(response)["message"]
    assert simulator.incidents == []


async def test_viewer_can_read_statuses_and_severities(simulator: Simulator) -> None:
    async with client(simulator, VIEWER_KEY) as http:
        statuses = (await http.get("/v1/incident_statuses")).json()["incident_statuses"]
        severities = (await http.get("/v1/severities")).json()["severities"]
    assert {s["id"]: s["category"] for s in statuses}[CLOSED_STATUS_ID] == "closed"
    assert [(s["name"], s["rank"]) for s in severities] == [("Minor", 1), ("Major", 2), ("Critical", 3)]


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"visibility": "public"}, "idempotency_key", "is_required"),
        ({"idempotency_key": "k"}, "visibility", "is_required"),
        (incident_body(name=42), "name", "invalid_type"),
        (incident_body(idempotency_key=["k"]), "idempotency_key", "invalid_type"),
        (incident_body(mode="production"), "mode", "invalid_value"),
        (incident_body(visibility="internal"), "visibility", "invalid_value"),
        (incident_body(severity_id="01NOSUCHSEVERITY0000000000"), "severity_id", "invalid_value"),
        (
            incident_body(incident_status_id="01NOSUCHSTATUS000000000000"),
            "incident_status_id",
            "invalid_value",
        ),
    ],
)
async def test_create_validation_errors_name_the_field(
    simulator: Simulator, body: dict[str, Any], field: str, code: str
) -> None:
    async with client(simulator) as http:
        response = await http.post("/v2/incidents", json=body)
    assert response.status_code == 422
    assert response.json()["type"] == "validation_error"
    detail = only_error(response)
    assert (detail["code"], detail["source"]["field"]) == (code, field)
    assert simulator.incidents == []


async def test_create_allows_properties_the_spec_does_not_forbid(simulator: Simulator) -> None:
    async with client(simulator) as http:
        response = await http.post("/v2/incidents", json=incident_body(some_future_field=True))
    assert response.status_code == 200


async def test_malformed_json_is_400_bad_request(simulator: Simulator) -> None:
    async with client(simulator) as http:
        response = await http.post(
            "/v2/incidents", content=b'{"visibility": ', headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["type"] == "bad_request"
    assert simulator.incidents == []


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"incident": {}}, "notify_incident_channel", "is_required"),
        ({"notify_incident_channel": True}, "incident", "is_required"),
        (
            {"incident": {"incident_status_id": 7}, "notify_incident_channel": True},
            "incident.incident_status_id",
            "invalid_type",
        ),
        (close_body("01NOSUCHSTATUS000000000000"), "incident.incident_status_id", "invalid_value"),
        (
            {"incident": {"severity_id": "nope"}, "notify_incident_channel": False},
            "incident.severity_id",
            "invalid_value",
        ),
    ],
)
async def test_edit_validation_errors_name_the_field(
    simulator: Simulator, body: dict[str, Any], field: str, code: str
) -> None:
    async with client(simulator) as http:
        created = (await http.post("/v2/incidents", json=incident_body())).json()["incident"]
        response = await http.post(f"/v2/incidents/{created['id']}/actions/edit", json=body)
    assert response.status_code == 422
    detail = only_error(response)
    assert (detail["code"], detail["source"]["field"]) == (code, field)
    assert simulator.incident(created["id"])["incident_status"]["id"] == INVESTIGATING_STATUS_ID


async def test_every_error_has_a_fresh_request_id_also_in_the_header(simulator: Simulator) -> None:
    async with client(simulator) as http:
        responses = [await http.post("/v2/incidents", json={}) for _ in range(3)]
    ids = [response.json()["request_id"] for response in responses]
    assert len(set(ids)) == 3
    assert [response.headers["X-Request-Id"] for response in responses] == ids


# --- incidents ------------------------------------------------------------------------------------


async def test_create_returns_a_live_incident_with_reference_and_creator(simulator: Simulator) -> None:
    async with client(simulator) as http:
        response = await http.post("/v2/incidents", json=incident_body(severity_id=SEVERITY_MAJOR_ID))
    assert response.status_code == 200
    incident = response.json()["incident"]
    assert incident["reference"] == "INC-1"
    assert len(incident["id"]) == 26
    assert incident["permalink"].endswith("/1")
    assert incident["incident_status"]["id"] == INVESTIGATING_STATUS_ID
    assert incident["incident_status"]["category"] == "live"
    assert incident["severity"]["name"] == "Major"
    assert incident["creator"]["api_key"]["name"] == "full"
    assert incident["name"] == incident_body()["name"]
    assert simulator.incidents == [incident]


async def test_references_count_from_one_and_test_mode_incidents_are_created(simulator: Simulator) -> None:
    async with client(simulator, CREATOR_KEY) as http:
        for number in range(3):
            await http.post("/v2/incidents", json=incident_body(idempotency_key=f"k{number}", mode="test"))
    assert [(i["reference"], i["mode"]) for i in simulator.incidents] == [
        ("INC-1", "test"),
        ("INC-2", "test"),
        ("INC-3", "test"),
    ]


async def test_same_idempotency_key_returns_the_first_incident_and_creates_nothing(
    simulator: Simulator,
) -> None:
    async with client(simulator) as http:
        first = await http.post("/v2/incidents", json=incident_body())
        second = await http.post("/v2/incidents", json=incident_body(name="a retry with another name"))
    assert second.status_code == 200
    assert second.json()["incident"]["id"] == first.json()["incident"]["id"]
    assert second.json()["incident"]["name"] == incident_body()["name"]
    assert len(simulator.incidents) == 1


async def test_show_by_id_and_by_numeric_reference(simulator: Simulator) -> None:
    async with client(simulator) as http:
        await http.post("/v2/incidents", json=incident_body(idempotency_key="a"))
        created = (await http.post("/v2/incidents", json=incident_body(idempotency_key="b"))).json()["incident"]
        by_id = await http.get(f"/v2/incidents/{created['id']}")
        by_number = await http.get("/v2/incidents/2")
        missing = await http.get("/v2/incidents/3")
    assert by_id.json()["incident"]["id"] == created["id"]
    assert by_number.json()["incident"]["reference"] == "INC-2"
    assert missing.status_code == 404
    assert missing.json()["type"] == "not_found"
    assert simulator.incident("2")["id"] == created["id"]


async def test_edit_closes_and_updates_the_incident(simulator: Simulator) -> None:
    async with client(simulator) as http:
        created = (await http.post("/v2/incidents", json=incident_body())).json()["incident"]
        response = await http.post(
            f"/v2/incidents/{created['id']}/actions/edit",
            json={
                "incident": {
                    "incident_status_id": CLOSED_STATUS_ID,
                    "severity_id": SEVERITY_CRITICAL_ID,
                    "summary": "resolved",
                },
                "notify_incident_channel": True,
            },
        )
    assert response.status_code == 200
    edited = response.json()["incident"]
    assert edited["incident_status"]["category"] == "closed"
    assert edited["severity"]["id"] == SEVERITY_CRITICAL_ID
    assert edited["summary"] == "resolved"
    assert edited["name"] == created["name"]
    assert simulator.incident(created["id"]) == edited


async def test_edit_by_numeric_reference_is_not_found(simulator: Simulator) -> None:
    async with client(simulator) as http:
        await http.post("/v2/incidents", json=incident_body())
        response = await http.post("/v2/incidents/1/actions/edit", json=close_body())
    assert response.status_code == 404


async def test_unknown_path_answers_the_error_envelope(simulator: Simulator) -> None:
    async with client(simulator) as http:
        response = await http.get("/v3/nothing")
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


# --- org rules ------------------------------------------------------------------------------------


async def test_severity_required_refuses_a_create_without_severity(simulator: Simulator) -> None:
    simulator.config.severity_required = True
    async with client(simulator) as http:
        refused = await http.post("/v2/incidents", json=incident_body())
        accepted = await http.post("/v2/incidents", json=incident_body(severity_id=SEVERITY_MAJOR_ID))
    detail = only_error(refused)
    assert refused.status_code == 422
    assert (detail["code"], detail["source"]["field"]) == ("is_required", "severity_id")
    assert accepted.status_code == 200
    assert len(simulator.incidents) == 1


async def test_close_requires_role_refuses_a_key_without_it(simulator: Simulator) -> None:
    simulator.config.close_requires_role = "post_incident_flow_opt_out"
    skipper_key = "inc_live_skipper_0a1b2c3d4e5f6a7b"
    simulator.set_key(skipper_key, name="skipper", roles=["incident_editor", "post_incident_flow_opt_out"])
    async with client(simulator) as http:
        created = (await http.post("/v2/incidents", json=incident_body())).json()["incident"]
        edit_path = f"/v2/incidents/{created['id']}/actions/edit"
        refused = await http.post(edit_path, json=close_body())
        to_learning = await http.post(edit_path, json=close_body(DOCUMENTING_STATUS_ID))
    async with client(simulator, skipper_key) as http:
        closed = await http.post(edit_path, json=close_body())
    assert refused.status_code == 422
    assert refused.json()["type"] == "validation_error"
    message = only_error(refused)["message"]
    assert "post-incident flow" in message
    assert "'post_incident_flow_opt_out'" in message
    assert to_learning.status_code == 200
    assert closed.status_code == 200
    assert closed.json()["incident"]["incident_status"]["category"] == "closed"


# --- inspection and secrecy -----------------------------------------------------------------------


async def test_requests_are_recorded_with_key_names_only(simulator: Simulator) -> None:
    async with client(simulator) as http:
        await http.post("/v2/incidents", json=incident_body())
        await http.get("/v1/identity")
    async with client(simulator, key=None) as http:
        await http.get("/v1/identity")
    recorded = simulator.requests
    assert [(r.operation, r.status, r.key_name) for r in recorded] == [
        ("create_incident", 200, "full"),
        ("identity", 200, "full"),
        ("identity", 401, None),
    ]
    assert recorded[0].body == incident_body()
    assert recorded[0].path == "/v2/incidents"
    simulator.clear_requests()
    assert simulator.requests == []


async def test_no_key_appears_in_the_request_log_admin_endpoints_or_reprs(simulator: Simulator) -> None:
    async with client(simulator) as http:
        await http.post("/v2/incidents", json=incident_body())
        await http.get("/v2/incidents/1")
    async with client(simulator, VIEWER_KEY) as http:
        await http.post("/v2/incidents", json=incident_body())
    async with client(simulator, "inc_live_unknown_key_1234") as http:
        await http.get("/v1/identity")
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        admin_incidents = await http.get("/_simulator/incidents")
        admin_requests = await http.get("/_simulator/requests")
    assert len(admin_incidents.json()["incidents"]) == 1
    assert len(admin_requests.json()["requests"]) == 4
    texts = [
        admin_incidents.text,
        admin_requests.text,
        json.dumps([asdict(entry) for entry in simulator.requests]),
        repr(simulator.requests),
        repr(simulator.config),
        json.dumps(simulator.incidents),
    ]
    for secret in (*ALL_KEYS, "inc_live_unknown_key_1234"):
        for text in texts:
            assert secret not in text


def test_state_can_be_read_from_another_thread_while_serving() -> None:
    loop = BackgroundLoop("simulator-test")
    sim = Simulator(SimulatorConfig(rate_limit_per_minute=None))
    sim.set_key(FULL_KEY, name="full", roles=["incident_creator"])
    try:
        loop.run(sim.start())
        with httpx.Client(base_url=sim.url, headers={"Authorization": f"Bearer {FULL_KEY}"}) as http:
            for number in range(5):
                assert http.post("/v2/incidents", json=incident_body(idempotency_key=str(number))).is_success
                assert len(sim.incidents) == number + 1
        assert [r.status for r in sim.requests] == [200] * 5
    finally:
        loop.run(sim.stop())
        loop.close()


# --- command line ---------------------------------------------------------------------------------


def test_cli_serves_the_configured_keys_and_prints_no_secret(tmp_path: Path) -> None:
    config_file = tmp_path / "simulator.yaml"
    config_file.write_text(
        "keys: [{key: file-secret-abc, name: from-file, roles: [viewer]}]\n"
        "rateLimitPerMinute: 3\nretryAfterForm: http-date\nseverityRequired: true\n"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "incidentio_operator",
            "simulator",
            "--port",
            "0",
            "--config",
            str(config_file),
            "--key",
            "cli-secret-xyz:viewer,incident_creator",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        url = first_line.split()[-1]
        with httpx.Client(base_url=url, timeout=5.0) as http:
            from_file = http.get("/v1/identity", headers={"Authorization": "Bearer file-secret-abc"})
            from_flag = http.post(
                "/v2/incidents", json=incident_body(), headers={"Authorization": "Bearer cli-secret-xyz"}
            )
        assert from_file.json()["identity"] == {
            "name": "from-file",
            "roles": ["viewer"],
            "dashboard_url": from_file.json()["identity"]["dashboard_url"],
            "team_roles": [],
            "teams": [],
        }
        assert from_file.headers["X-RateLimit-Limit"].startswith("3, 3;window=")
        assert only_error(from_flag)["source"]["field"] == "severity_id"
        process.send_signal(signal.SIGTERM)
        output = first_line + process.stdout.read()
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert CLOSED_STATUS_ID in output and SEVERITY_MAJOR_ID in output
    assert "key-1" in output and "from-file" in output
    assert "secret" not in output


def test_cli_serves_alert_sources_heartbeats_and_custom_fields_from_file_and_flags(tmp_path: Path) -> None:
    config_file = tmp_path / "simulator.yaml"
    config_file.write_text(
        "keys: [{key: file-secret-abc, name: reader, roles: [viewer]}]\n"
        "alertSources: [{id: SRC1, name: data alerts, token: src-secret-111}]\n"
        "heartbeats: [{id: HB1, name: operator, token: hb-secret-222, intervalSeconds: 30, gracePeriodSeconds: 5}]\n"
        "customFields:\n"
        "  - {name: Team, fieldType: single_select, options: [Payments, Growth]}\n"
        "  - {id: 01ASSET, name: Asset, fieldType: text}\n"
        "alertEventsPerMinute: 2\n"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "incidentio_operator",
            "simulator",
            "--port",
            "0",
            "--config",
            str(config_file),
            "--alert-source",
            "SRC2:src-secret-333",
            "--heartbeat",
            "HB2:hb-secret-444:10:2",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        url = first_line.split()[-1]
        reader = {"Authorization": "Bearer file-secret-abc"}
        with httpx.Client(base_url=url, timeout=5.0) as http:
            fields = http.get("/v2/custom_fields", headers=reader).json()["custom_fields"]
            team = next(field for field in fields if field["name"] == "Team")
            options = http.get("/v1/custom_field_options", params={"custom_field_id": team["id"]}, headers=reader)
            shown = http.get("/v2/alert_sources/HB2", headers=reader).json()["alert_source"]
            event = {"status": "firing", "title": "t", "deduplication_key": "k"}
            events = [
                http.post("/v2/alert_events/http/SRC1", json=event, headers={"Authorization": "Bearer src-secret-111"})
                for _ in range(3)
            ]
            flagged = http.post("/v2/alert_events/http/SRC2", json=event, params={"token": "src-secret-333"})
            ping = http.post("/v2/heartbeat/HB1/ping", headers={"Authorization": "Bearer hb-secret-222"})
            heartbeat = http.get("/_simulator/heartbeats/HB1").json()["heartbeat"]
        process.send_signal(signal.SIGTERM)
        output = first_line + process.stdout.read()
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert [field["name"] for field in fields] == ["Team", "Asset"]
    assert [option["value"] for option in options.json()["custom_field_options"]] == ["Payments", "Growth"]
    assert shown["heartbeat_options"]["interval_seconds"] == 10
    assert shown["heartbeat_options"]["grace_period_seconds"] == 2
    assert [response.status_code for response in events] == [202, 202, 429]
    assert flagged.status_code == 202 and ping.status_code == 204
    assert heartbeat["settings"] == {"interval_seconds": 30, "grace_period_seconds": 5, "failure_threshold": 1}
    assert len(heartbeat["pings"]) == 1
    assert process.returncode == 0
    assert "SRC1" in output and "data alerts" in output and "HB2" in output and "every 10s, grace 2s" in output
    assert "01ASSET" in output and "Payments, Growth" in output and "2/min per alert source" in output
    assert "secret" not in output


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("alertSources: [{id: SRC1, name: x}]", "needs an id and a token"),
        ("heartbeats: [{id: HB1, token: t, intervalSeconds: 0}]", "interval"),
        ("customFields: [{name: Team, fieldType: date}]", "fieldType"),
        ("customFields: [{name: Team, fieldType: text, options: [a]}]", "options go with"),
    ],
)
def test_cli_refuses_a_config_it_cannot_serve(tmp_path: Path, document: str, problem: str) -> None:
    config_file = tmp_path / "simulator.yaml"
    config_file.write_text(document + "\n")

    finished = subprocess.run(
        [sys.executable, "-m", "incidentio_operator", "simulator", "--port", "0", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode != 0
    assert problem in finished.stderr


def test_cli_returns_within_a_bound_after_sigint() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "incidentio_operator", "simulator", "--port", "0", "--no-rate-limit"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    process.stdout.readline()
    process.send_signal(signal.SIGINT)
    # A CLI that ignored SIGINT would still be running when the bound runs out.
    process.communicate(timeout=10)
    assert process.returncode == 0
