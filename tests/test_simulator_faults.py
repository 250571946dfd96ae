"""Fault injection in the simulator: failures, hangs, slow answers, lost responses and seeded random faults."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from incidentio_operator.standins.simulator import CLOSED_STATUS_ID, Simulator, SimulatorConfig

KEY = "inc_live_faults_0f1e2d3c4b5a"


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    sim = Simulator(SimulatorConfig(rate_limit_per_minute=None))
    sim.set_key(KEY, name="faulty", roles=["viewer", "incident_creator", "incident_editor"])
    async with sim:
        yield sim


@pytest.fixture
async def http(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=simulator.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5.0
    ) as client:
        yield client


def create_body(idempotency_key: str = "alert-1") -> dict[str, Any]:
    return {"idempotency_key": idempotency_key, "visibility": "public", "name": "Column removed"}


async def test_fail_next_fails_only_the_chosen_operation_and_creates_nothing(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    simulator.faults.fail_next(2, status=503, operation="create_incident", retry_after="7")
    identity = await http.get("/v1/identity")
    failures = [await http.post("/v2/incidents", json=create_body()) for _ in range(2)]
    success = await http.post("/v2/incidents", json=create_body())
    assert identity.status_code == 200
    for failure in failures:
        assert failure.status_code == 503
        assert failure.headers["Retry-After"] == "7"
        assert failure.json()["type"] == "service_unavailable"
    assert success.status_code == 200
    assert [i["reference"] for i in simulator.incidents] == ["INC-1"]


async def test_injected_429_carries_the_rate_limit_object(simulator: Simulator, http: httpx.AsyncClient) -> None:
    simulator.faults.fail_next(1, status=429, retry_after="2")
    response = await http.get("/v1/severities")
    assert response.status_code == 429
    assert response.json()["type"] == "too_many_requests"
    assert response.json()["rate_limit"]["name"] == "faulty"


async def test_faults_apply_after_authentication(simulator: Simulator) -> None:
    simulator.faults.fail_next(1, status=500)
    async with httpx.AsyncClient(base_url=simulator.url) as anonymous:
        unauthenticated = await anonymous.get("/v1/identity")
    async with httpx.AsyncClient(base_url=simulator.url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        failed = await http.get("/v1/identity")
    assert unauthenticated.status_code == 401
    assert failed.status_code == 500


async def test_hang_outlasts_the_client_timeout_and_stop_does_not_wait_for_it(simulator: Simulator) -> None:
    simulator.faults.hang_next(1, seconds=60, operation="create_incident")
    async with httpx.AsyncClient(
        base_url=simulator.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=0.2
    ) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/v2/incidents", json=create_body())
    # wait_for raises if stop waits out the 60 s hang.
    await asyncio.wait_for(simulator.stop(), timeout=10)
    assert simulator.incidents == []


async def test_hang_answers_504_once_its_time_is_up(simulator: Simulator, http: httpx.AsyncClient) -> None:
    simulator.faults.hang_next(1, seconds=0.05)
    response = await http.get("/v1/identity")
    assert response.status_code == 504
    assert response.json()["type"] == "gateway_timeout"


async def test_slow_answers_correctly_after_the_delay(simulator: Simulator, http: httpx.AsyncClient) -> None:
    simulator.faults.slow_next(1, seconds=0.3, operation="create_incident")
    started = time.monotonic()
    response = await http.post("/v2/incidents", json=create_body())
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    assert len(simulator.incidents) == 1


async def test_lost_response_creates_and_the_retry_finds_the_same_incident(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    simulator.faults.lose_response_next(1, operation="create_incident")
    lost = await http.post("/v2/incidents", json=create_body())
    assert lost.status_code == 502
    assert len(simulator.incidents) == 1
    retried = await http.post("/v2/incidents", json=create_body())
    assert retried.status_code == 200
    assert retried.json()["incident"]["id"] == simulator.incidents[0]["id"]
    assert len(simulator.incidents) == 1


async def test_lost_edit_response_still_edits(simulator: Simulator, http: httpx.AsyncClient) -> None:
    created = (await http.post("/v2/incidents", json=create_body())).json()["incident"]
    simulator.faults.lose_response_next(1)
    lost = await http.post(
        f"/v2/incidents/{created['id']}/actions/edit",
        json={"incident": {"incident_status_id": CLOSED_STATUS_ID}, "notify_incident_channel": False},
    )
    assert lost.status_code == 502
    assert simulator.incident(created["id"])["incident_status"]["category"] == "closed"


async def run_random(seed: int, calls: int) -> list[int]:
    sim = Simulator(SimulatorConfig(rate_limit_per_minute=None))
    sim.set_key(KEY, name="faulty", roles=["viewer"])
    sim.faults.random(error_rate=0.3, status=502, seed=seed)
    async with sim, httpx.AsyncClient(base_url=sim.url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        return [(await http.get("/v1/severities")).status_code for _ in range(calls)]


async def test_random_faults_are_reproducible_with_a_seed() -> None:
    first = await run_random(seed=7, calls=40)
    again = await run_random(seed=7, calls=40)
    rng = random.Random(7)
    expected = [502 if rng.random() < 0.3 else 200 for _ in range(40)]
    assert first == again == expected
    assert 502 in first and 200 in first
    assert await run_random(seed=8, calls=40) != first


async def test_random_hangs_and_operation_filter(simulator: Simulator, http: httpx.AsyncClient) -> None:
    simulator.faults.random(hang_rate=1.0, hang_seconds=0.05, operation="show_incident")
    created = await http.post("/v2/incidents", json=create_body())
    shown = await http.get("/v2/incidents/1")
    assert created.status_code == 200
    assert shown.status_code == 504


async def test_clear_removes_planned_and_random_faults(simulator: Simulator, http: httpx.AsyncClient) -> None:
    simulator.faults.fail_next(5)
    simulator.faults.random(error_rate=1.0)
    simulator.faults.clear()
    assert (await http.get("/v1/identity")).status_code == 200


def test_fault_arguments_are_checked() -> None:
    sim = Simulator()
    with pytest.raises(ValueError):
        sim.faults.fail_next(0)
    with pytest.raises(ValueError):
        sim.faults.random(error_rate=0.7, hang_rate=0.5)
