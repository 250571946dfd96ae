"""The simulator's per-key token bucket, driven by a fake clock: headers, 429s in both Retry-After forms, refill."""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime

import httpx
import pytest

from incidentio_operator.standins.simulator import Simulator, SimulatorConfig

KEY = "inc_live_ratelimited_9f8e7d6c5b4a"
OTHER_KEY = "inc_live_other_1a2b3c4d5e6f"
IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def simulator(clock: FakeClock) -> AsyncIterator[Simulator]:
    # Four requests a bucket, refilled at 0.4/s: a 2.5 s wait per token and a 10 s window.
    sim = Simulator(SimulatorConfig(rate_limit_per_minute=4, refill_per_second=0.4), clock=clock)
    sim.set_key(KEY, name="limited", roles=["viewer", "incident_creator"])
    sim.set_key(OTHER_KEY, name="other", roles=["viewer"])
    async with sim:
        yield sim


@pytest.fixture
async def http(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=simulator.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


async def drain(http: httpx.AsyncClient, count: int) -> list[httpx.Response]:
    return [await http.get("/v1/severities") for _ in range(count)]


async def test_headers_count_down_the_bucket_consistently(http: httpx.AsyncClient) -> None:
    before = time.time()
    responses = await drain(http, 4)
    after = time.time()
    assert [r.status_code for r in responses] == [200] * 4
    assert {r.headers["X-RateLimit-Limit"] for r in responses} == {"4, 4;window=10"}
    assert [int(r.headers["X-RateLimit-Remaining"]) for r in responses] == [3, 2, 1, 0]
    assert [int(r.headers["X-RateLimit-Used"]) for r in responses] == [1, 2, 3, 4]
    # Back to full once every spent token has refilled: 4 tokens at 0.4/s.
    reset = int(responses[-1].headers["X-RateLimit-Reset"])
    assert math.ceil(before + 10) <= reset <= math.ceil(after + 10)


async def test_empty_bucket_answers_429_with_retry_after_in_seconds(
    simulator: Simulator, http: httpx.AsyncClient
) -> None:
    await drain(http, 4)
    refused = await http.post("/v2/incidents", json={"idempotency_key": "k", "visibility": "public"})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "3"  # 2.5 s, rounded up
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Used"] == "4"
    body = refused.json()
    assert body["type"] == "too_many_requests"
    assert body["status"] == 429
    assert body["errors"][0]["code"] == "too_many_requests"
    assert body["rate_limit"]["name"] == "limited"
    assert (body["rate_limit"]["limit"], body["rate_limit"]["remaining"]) == (4, 0)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", body["rate_limit"]["retry_after"])
    assert simulator.incidents == []
    assert simulator.requests[-1].status == 429


async def test_empty_bucket_answers_retry_after_as_an_http_date(simulator: Simulator, http: httpx.AsyncClient) -> None:
    simulator.config.retry_after_form = "http-date"
    await drain(http, 4)
    before = time.time()
    refused = await http.get("/v1/severities")
    after = time.time()
    retry_after = refused.headers["Retry-After"]
    assert IMF_FIXDATE.match(retry_after), retry_after
    retry_at = parsedate_to_datetime(retry_after).timestamp()
    assert math.floor(before + 2.5) <= retry_at <= math.ceil(after + 2.5)


async def test_partial_refill_shortens_the_wait(clock: FakeClock, http: httpx.AsyncClient) -> None:
    await drain(http, 4)
    clock.advance(1.0)
    refused = await http.get("/v1/severities")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"  # 1.5 s left, rounded up


async def test_bucket_refills_continuously(clock: FakeClock, http: httpx.AsyncClient) -> None:
    await drain(http, 4)
    assert (await http.get("/v1/severities")).status_code == 429
    clock.advance(2.5)
    assert (await http.get("/v1/severities")).status_code == 200
    assert (await http.get("/v1/severities")).status_code == 429
    clock.advance(100.0)
    refilled = await drain(http, 5)
    assert [r.status_code for r in refilled] == [200, 200, 200, 200, 429]


async def test_each_key_has_its_own_bucket(simulator: Simulator, http: httpx.AsyncClient) -> None:
    await drain(http, 5)
    async with httpx.AsyncClient(base_url=simulator.url, headers={"Authorization": f"Bearer {OTHER_KEY}"}) as other:
        response = await other.get("/v1/severities")
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "3"


async def test_limit_can_change_while_running(simulator: Simulator, http: httpx.AsyncClient) -> None:
    await drain(http, 2)
    simulator.config.rate_limit_per_minute = 1
    shrunk = await http.get("/v1/severities")
    assert shrunk.headers["X-RateLimit-Limit"].startswith("1, 1;window=")
    assert (await http.get("/v1/severities")).status_code == 429
    simulator.config.rate_limit_per_minute = None
    unlimited = await drain(http, 10)
    assert all(r.status_code == 200 and "X-RateLimit-Limit" not in r.headers for r in unlimited)


async def test_rate_limit_headers_only_on_authenticated_responses(simulator: Simulator) -> None:
    async with httpx.AsyncClient(base_url=simulator.url) as anonymous:
        response = await anonymous.get("/v1/identity")
    assert response.status_code == 401
    assert "X-RateLimit-Remaining" not in response.headers


async def test_forbidden_responses_spend_a_token_and_carry_headers(simulator: Simulator) -> None:
    async with httpx.AsyncClient(base_url=simulator.url, headers={"Authorization": f"Bearer {OTHER_KEY}"}) as other:
        forbidden = await other.post("/v2/incidents", json={"idempotency_key": "k", "visibility": "public"})
    assert forbidden.status_code == 403
    assert forbidden.headers["X-RateLimit-Remaining"] == "3"
