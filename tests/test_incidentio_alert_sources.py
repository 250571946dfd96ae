"""The client's alert-source calls over loopback: alert events, heartbeat pings, alert sources; pacing and secrecy."""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import socket
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import httpx
import pytest

from incidentio_operator.incidentio import (
    ALERT_SOURCE_RATE_LIMIT,
    Account,
    AlertEvent,
    AlertEventAccepted,
    AlertSourceAccount,
    AlertSourceToken,
    ApiKey,
    IncidentIoClient,
    IncidentIoError,
    NotFound,
    RateLimit,
    ServerError,
    Unauthorized,
    Unreachable,
    ValidationFailed,
)
from incidentio_operator.standins.simulator import (
    DEFAULT_ROLES,
    AlertSourceConfig,
    ApiKeyConfig,
    HeartbeatSettings,
    Simulator,
    SimulatorConfig,
)

pytestmark = pytest.mark.timeout(60)

API_KEY = "sk-live-AlertSources-4f3e2d1c"
SOURCE_ID = "01GW2G3V0S59R238FAHPDS1R66"
SOURCE_TOKEN = "tok-live-Hq7w2Ex9Rt4Yu6Io"
OTHER_ID = "01GW2G3V0S59R238FAHPDS1R68"
OTHER_TOKEN = "tok-live-Other-5Tg8Bn3Mk1"
HEARTBEAT_ID = "01GW2G3V0S59R238FAHPDS1R67"
HEARTBEAT_TOKEN = "tok-live-Heartbeat-2Wq9Zs7"


class Recorder:
    def __init__(self) -> None:
        self.finished: list[tuple[str, int | None]] = []
        self.waits: list[float] = []

    def request_finished(self, operation: str, status: int | None, seconds: float) -> None:
        self.finished.append((operation, status))

    def rate_limit_waited(self, seconds: float) -> None:
        self.waits.append(seconds)


class SkipTime:
    """Sleeping moves the clock on instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def sim_config(**overrides: Any) -> SimulatorConfig:
    config = SimulatorConfig(keys={API_KEY: ApiKeyConfig("ci", DEFAULT_ROLES)}, rate_limit_per_minute=None)
    for source in (
        AlertSourceConfig(SOURCE_ID, "data alerts", SOURCE_TOKEN),
        AlertSourceConfig(OTHER_ID, "other alerts", OTHER_TOKEN),
        AlertSourceConfig(HEARTBEAT_ID, "operator", HEARTBEAT_TOKEN, "heartbeat", HeartbeatSettings(60, 30)),
    ):
        config.alert_sources[source.id] = source
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(sim_config()) as simulator:
        yield simulator


def source(sim: Simulator, config_id: str = SOURCE_ID, token: str = SOURCE_TOKEN) -> AlertSourceAccount:
    return AlertSourceAccount(base_url=sim.url, config_id=config_id, token=AlertSourceToken(token))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def skip_time() -> SkipTime:
    return SkipTime()


@pytest.fixture
async def client(recorder: Recorder, skip_time: SkipTime) -> AsyncIterator[IncidentIoClient]:
    async with IncidentIoClient(
        timeout=5.0, observer=recorder, clock=skip_time.clock, sleep=skip_time.sleep
    ) as incident_io:
        yield incident_io


def firing(key: str = "alert-1/dest/1", **fields: Any) -> AlertEvent:
    return AlertEvent(status="firing", title="[AnomalyArmor] Column removed", deduplication_key=key, **fields)


# --- the calls ---------------------------------------------------------------------------------------------


async def test_alert_events_fire_update_and_resolve_one_alert(
    client: IncidentIoClient, sim: Simulator, recorder: Recorder
) -> None:
    account = source(sim)
    first = await client.create_alert_event(
        account,
        firing(description="**Column** removed", metadata={"severity": "warning", "rules": ["r1"]}, source_url="u"),
    )
    await client.create_alert_event(account, firing(metadata={"severity": "critical"}))
    resolved = await client.create_alert_event(
        account,
        AlertEvent(status="resolved", title="[AnomalyArmor] Column removed", deduplication_key="alert-1/dest/1"),
    )

    assert first == AlertEventAccepted("success", "Event accepted for processing", "alert-1/dest/1")
    assert resolved.deduplication_key == "alert-1/dest/1"
    (alert,) = sim.alerts(SOURCE_ID)
    assert (alert.status, alert.event_count, alert.metadata) == ("resolved", 3, {"severity": "critical"})
    assert sim.requests[0].body == {
        "status": "firing",
        "title": "[AnomalyArmor] Column removed",
        "deduplication_key": "alert-1/dest/1",
        "description": "**Column** removed",
        "metadata": {"severity": "warning", "rules": ["r1"]},
        "source_url": "u",
    }
    assert sim.requests[2].body == {
        "status": "resolved",
        "title": "[AnomalyArmor] Column removed",
        "deduplication_key": "alert-1/dest/1",
    }
    assert recorder.finished == [("create_alert_event", 202)] * 3


async def test_a_heartbeat_ping_is_recorded(client: IncidentIoClient, sim: Simulator, recorder: Recorder) -> None:
    await client.ping_heartbeat(source(sim, HEARTBEAT_ID, HEARTBEAT_TOKEN))
    await client.ping_heartbeat(source(sim, HEARTBEAT_ID, HEARTBEAT_TOKEN))

    assert len(sim.heartbeat(HEARTBEAT_ID).pings) == 2
    assert recorder.finished == [("ping_heartbeat", 204)] * 2


async def test_the_alert_source_is_read_with_the_api_key(client: IncidentIoClient, sim: Simulator) -> None:
    account = Account(base_url=sim.url, api_key=ApiKey(API_KEY))

    http_source = await client.get_alert_source(account, SOURCE_ID)
    heartbeat = await client.get_alert_source(account, HEARTBEAT_ID)

    assert (http_source.id, http_source.name, http_source.source_type) == (SOURCE_ID, "data alerts", "http")
    assert http_source.is_http and http_source.heartbeat is None
    assert not heartbeat.is_http and heartbeat.source_type == "heartbeat"
    assert heartbeat.heartbeat is not None
    assert (heartbeat.heartbeat.interval_seconds, heartbeat.heartbeat.grace_period_seconds) == (60, 30)
    assert SOURCE_TOKEN not in repr(http_source)
    with pytest.raises(NotFound):
        await client.get_alert_source(account, "01NOSUCHSOURCE")


# --- failures and retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config_id", "token", "error"),
    [
        (SOURCE_ID, "wrong-token", Unauthorized),
        (SOURCE_ID, OTHER_TOKEN, Unauthorized),
        ("01NOSUCHSOURCE", SOURCE_TOKEN, NotFound),
        (HEARTBEAT_ID, HEARTBEAT_TOKEN, NotFound),
    ],
)
async def test_a_refused_token_or_unknown_source_fails_at_once(
    client: IncidentIoClient, sim: Simulator, config_id: str, token: str, error: type[IncidentIoError]
) -> None:
    with pytest.raises(error) as caught:
        await client.create_alert_event(source(sim, config_id, token), firing())

    assert not caught.value.retryable and caught.value.operation == "create_alert_event"
    assert len(sim.requests) == 1 and sim.alerts(SOURCE_ID) == []


async def test_a_wrong_heartbeat_token_is_unauthorized(client: IncidentIoClient, sim: Simulator) -> None:
    with pytest.raises(Unauthorized, match=r"^HTTP 401: Unauthorized$"):
        await client.ping_heartbeat(source(sim, HEARTBEAT_ID, "wrong"))

    assert sim.heartbeat(HEARTBEAT_ID).pings == ()


async def test_an_event_incident_io_refuses_is_a_validation_failure_naming_the_field(
    client: IncidentIoClient, sim: Simulator
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await client.create_alert_event(source(sim), firing(key=""))

    assert caught.value.fields == ("deduplication_key",)
    assert len(sim.requests) == 1


async def test_5xx_and_lost_responses_are_retried_into_one_alert(
    client: IncidentIoClient, sim: Simulator, recorder: Recorder, skip_time: SkipTime
) -> None:
    sim.faults.fail_next(1, status=503, operation="create_alert_event")
    sim.faults.lose_response_next(1, operation="create_alert_event")

    await client.create_alert_event(source(sim), firing())

    assert recorder.finished == [("create_alert_event", 503), ("create_alert_event", 502), ("create_alert_event", 202)]
    assert len(skip_time.sleeps) == 2
    (alert,) = sim.alerts(SOURCE_ID)
    assert (alert.status, alert.event_count) == ("firing", 2)


async def test_retries_stop_after_max_attempts(sim: Simulator, skip_time: SkipTime) -> None:
    sim.faults.fail_next(5, status=500, operation="ping_heartbeat")
    async with IncidentIoClient(max_attempts=3, clock=skip_time.clock, sleep=skip_time.sleep) as client:
        with pytest.raises(ServerError):
            await client.ping_heartbeat(source(sim, HEARTBEAT_ID, HEARTBEAT_TOKEN))

    assert [r.status for r in sim.requests] == [500, 500, 500]


async def test_a_hang_is_unreachable_after_the_timeout(sim: Simulator) -> None:
    sim.faults.hang_next(2, seconds=60.0, operation="create_alert_event")
    skip = SkipTime()
    async with IncidentIoClient(timeout=0.2, max_attempts=2, sleep=skip.sleep) as client:
        with pytest.raises(Unreachable, match=r"timed out after 0\.2s"):
            await client.create_alert_event(source(sim), firing())


async def test_connection_refused_is_unreachable(skip_time: SkipTime) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = AlertSourceAccount(f"http://127.0.0.1:{port}", SOURCE_ID, AlertSourceToken(SOURCE_TOKEN))
    async with IncidentIoClient(max_attempts=2, clock=skip_time.clock, sleep=skip_time.sleep) as client:
        with pytest.raises(Unreachable, match="connection refused"):
            await client.ping_heartbeat(nowhere)


# --- pacing per alert source ---------------------------------------------------------------------------


async def test_by_default_a_burst_past_incident_ios_120_a_minute_waits_instead_of_being_refused(
    sim: Simulator,
) -> None:
    assert ALERT_SOURCE_RATE_LIMIT.per_minute == 120 == ALERT_SOURCE_RATE_LIMIT.refill_per_second * 60
    assert sim.config.alert_events_per_minute == 120
    recorder = Recorder()
    async with IncidentIoClient(observer=recorder) as client:
        await asyncio.gather(*(client.create_alert_event(source(sim), firing(key=f"k{n}")) for n in range(124)))

    assert [r.status for r in sim.requests].count(202) == 124
    assert [r.status for r in sim.requests].count(429) == 0
    assert len(recorder.waits) >= 4


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_the_sources_429_is_honoured_in_either_retry_after_form(form: str) -> None:
    config = sim_config(alert_events_per_minute=1, alert_events_refill_per_second=1.0, retry_after_form=form)
    recorder = Recorder()
    # A client that believes in a much larger bucket, so only the server's 429s hold it back.
    generous = RateLimit(per_minute=100, refill_per_second=100.0)
    async with (
        Simulator(config) as sim,
        IncidentIoClient(alert_source_rate_limit=generous, observer=recorder) as client,
    ):
        for number in range(3):
            await client.create_alert_event(source(sim), firing(key=f"k{number}"))
        accepted = [r for r in sim.requests if r.status == 202]
        throttled = [r for r in sim.requests if r.status == 429]

    assert len(accepted) == 3 and throttled
    # Each 429 paused the source until the server's bucket had a token again (1/s), never less.
    assert accepted[2].at - accepted[0].at >= 1.0
    assert recorder.waits and all(wait > 0 for wait in recorder.waits)


async def test_a_burst_of_events_is_paced_per_source_without_a_single_429() -> None:
    limit = RateLimit(per_minute=50, refill_per_second=100.0)
    config = sim_config(
        alert_events_per_minute=limit.per_minute, alert_events_refill_per_second=limit.refill_per_second
    )
    # As in the API-key burst test: a few connections carry this rate on loopback with CPU to spare.
    async with Simulator(config) as sim, IncidentIoClient(alert_source_rate_limit=limit, max_connections=10) as client:
        started = time.monotonic()
        await asyncio.gather(
            *(client.create_alert_event(source(sim), firing(key=f"a{n}")) for n in range(150)),
            *(client.create_alert_event(source(sim, OTHER_ID, OTHER_TOKEN), firing(key=f"b{n}")) for n in range(150)),
        )
        elapsed = time.monotonic() - started
        requests = sim.requests

    assert [r.status for r in requests].count(429) == 0
    assert len(sim.alerts(SOURCE_ID)) == 150 == len(sim.alerts(OTHER_ID))
    per_source = sorted(r.at for r in requests if r.alert_source_id == SOURCE_ID)
    sustained = (len(per_source) - limit.per_minute) / (per_source[-1] - per_source[0])
    print(f"\n300 events on two sources in {elapsed:.2f}s, {sustained:.1f}/s sustained per source")
    assert sustained <= limit.refill_per_second * 1.05


async def test_alert_source_pacing_does_not_hold_back_api_key_calls(skip_time: SkipTime) -> None:
    slow = RateLimit(per_minute=1, refill_per_second=0.01)
    async with (
        Simulator(sim_config()) as sim,
        IncidentIoClient(alert_source_rate_limit=slow, clock=skip_time.clock, sleep=skip_time.sleep) as client,
    ):
        await client.create_alert_event(source(sim), firing())
        await client.get_alert_source(Account(sim.url, ApiKey(API_KEY)), SOURCE_ID)
        await client.create_alert_event(source(sim, OTHER_ID, OTHER_TOKEN), firing())
        assert skip_time.sleeps == []
        await client.create_alert_event(source(sim), firing(key="second"))

    assert skip_time.sleeps == [pytest.approx(100.0)]


# --- secrecy ------------------------------------------------------------------------------------------------


async def test_requests_carry_the_token_as_bearer_and_nowhere_else() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "heartbeat" in request.url.path:
            return httpx.Response(204)
        return httpx.Response(202, json={"status": "success", "message": "ok", "deduplication_key": "k"})

    account = AlertSourceAccount("https://api.incident.example/", "01SRC/../x", AlertSourceToken(SOURCE_TOKEN))
    async with IncidentIoClient(transport=httpx.MockTransport(answer)) as client:
        await client.create_alert_event(account, firing())
        await client.ping_heartbeat(account)

    assert [request.url.raw_path for request in seen] == [
        b"/v2/alert_events/http/01SRC%2F..%2Fx",
        b"/v2/heartbeat/01SRC%2F..%2Fx/ping",
    ]
    for request in seen:
        assert request.headers["Authorization"] == f"Bearer {SOURCE_TOKEN}"
        assert SOURCE_TOKEN not in str(request.url) and SOURCE_TOKEN.encode() not in request.content
    assert seen[0].headers["Content-Type"] == "application/json"


async def test_a_token_echoed_back_in_an_error_is_redacted() -> None:
    echoed = {"type": "validation_error", "status": 422, "errors": [{"message": f"token {SOURCE_TOKEN} is odd"}]}
    transport = httpx.MockTransport(lambda request: httpx.Response(422, json=echoed))
    account = AlertSourceAccount("https://api.incident.example", SOURCE_ID, AlertSourceToken(SOURCE_TOKEN))
    async with IncidentIoClient(transport=transport) as client:
        with pytest.raises(ValidationFailed) as caught:
            await client.create_alert_event(account, firing())

    assert str(caught.value) == "HTTP 422: token <redacted> is odd"


async def test_the_token_appears_nowhere(caplog: pytest.LogCaptureFixture, sim: Simulator) -> None:
    caplog.set_level(logging.DEBUG)
    good = source(sim)
    failures: list[IncidentIoError] = []

    async def expect_failure(call: Awaitable[Any]) -> None:
        try:
            await call
        except IncidentIoError as error:
            failures.append(error)

    sim.faults.fail_next(1, status=429, retry_after="0", operation="create_alert_event")
    sim.faults.fail_next(3, status=503, operation="ping_heartbeat")
    skip = SkipTime()
    async with IncidentIoClient(max_attempts=3, sleep=skip.sleep) as client:
        await client.create_alert_event(good, firing())
        await client.get_alert_source(Account(sim.url, ApiKey(API_KEY)), SOURCE_ID)
        await expect_failure(client.ping_heartbeat(source(sim, HEARTBEAT_ID, HEARTBEAT_TOKEN)))
        await expect_failure(client.create_alert_event(source(sim, SOURCE_ID, HEARTBEAT_TOKEN), firing()))
        await expect_failure(client.create_alert_event(good, firing(key="")))
        await expect_failure(client.create_alert_event(source(sim, "01NOPE"), firing()))
    assert {type(failure) for failure in failures} == {ServerError, Unauthorized, ValidationFailed, NotFound}

    texts = [repr(good), str(good), repr(good.token), str(good.token), f"{good}"]
    for failure in failures:
        texts += [str(failure), repr(failure), *map(str, failure.args), *failure.messages]
        assert failure.__cause__ is None and failure.__context__ is None
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), record.exc_text or ""]
    texts += [repr(entry) for entry in sim.requests]
    texts += [repr(sim.alert_events(SOURCE_ID)), repr(sim.alerts(SOURCE_ID)), repr(sim.config)]
    assert len(caplog.records) >= 8
    for token in (SOURCE_TOKEN, HEARTBEAT_TOKEN):
        assert not [text for text in texts if token in text]


def test_a_token_compares_by_value_never_equals_an_api_key_and_refuses_to_be_pickled() -> None:
    token = AlertSourceToken(SOURCE_TOKEN)

    assert token == AlertSourceToken(SOURCE_TOKEN) and token != AlertSourceToken("other")
    assert token != ApiKey(SOURCE_TOKEN) and hash(token) != hash(ApiKey(SOURCE_TOKEN))
    assert repr(token) == "AlertSourceToken(<redacted>)" and str(token) == "<redacted>"
    assert copy.deepcopy(AlertSourceAccount("u", "id", token)).token == token
    with pytest.raises(TypeError):
        pickle.dumps(token)
    with pytest.raises(TypeError):
        pickle.dumps(AlertSourceAccount("u", "id", token))
    with pytest.raises(ValueError, match="alert source token is empty"):
        AlertSourceToken("")
