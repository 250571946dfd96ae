"""The incident.io client over loopback against the simulator: every call, every error path, pacing."""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from incidentio_operator.incidentio import (
    Account,
    ApiKey,
    CreateIncidentRequest,
    EditIncidentRequest,
    Forbidden,
    IncidentIoClient,
    IncidentIoError,
    NotFound,
    Priority,
    RateLimit,
    RateLimited,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    Unreachable,
    ValidationFailed,
)
from incidentio_operator.standins.simulator import (
    CLOSED_STATUS_ID,
    DEFAULT_ROLES,
    INVESTIGATING_STATUS_ID,
    SEVERITY_MAJOR_ID,
    ApiKeyConfig,
    Simulator,
    SimulatorConfig,
)

pytestmark = pytest.mark.timeout(60)

SECRET = "sk-live-Zq8v3Yw1Xr5Ut7Ps9On"
KEY_NAME = "ci"


class Recorder:
    """A RequestObserver that keeps what it was told."""

    def __init__(self, on_finished: Callable[[str, int | None], None] | None = None) -> None:
        self.finished: list[tuple[str, int | None, float]] = []
        self.waits: list[float] = []
        self._on_finished = on_finished

    def request_finished(self, operation: str, status: int | None, seconds: float) -> None:
        self.finished.append((operation, status, seconds))
        if self._on_finished is not None:
            self._on_finished(operation, status)

    def rate_limit_waited(self, seconds: float) -> None:
        self.waits.append(seconds)

    @property
    def statuses(self) -> list[int | None]:
        return [status for _, status, _ in self.finished]


class SkipTime:
    """A clock and a sleep for one caller at a time: sleeping moves the clock on instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def sim_config(**overrides: Any) -> SimulatorConfig:
    settings: dict[str, Any] = {
        "keys": {SECRET: ApiKeyConfig(name=KEY_NAME, roles=DEFAULT_ROLES)},
        "rate_limit_per_minute": None,
    }
    settings.update(overrides)
    return SimulatorConfig(**settings)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(sim_config()) as simulator:
        yield simulator


@pytest.fixture
def account(sim: Simulator) -> Account:
    return Account(base_url=sim.url, api_key=ApiKey(SECRET))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def skip_time() -> SkipTime:
    return SkipTime()


@pytest.fixture
async def client(recorder: Recorder, skip_time: SkipTime) -> AsyncIterator[IncidentIoClient]:
    client = IncidentIoClient(
        timeout=5.0, max_attempts=4, observer=recorder, clock=skip_time.clock, sleep=skip_time.sleep
    )
    yield client
    await client.aclose()


def create_request(key: str = "alert-1/destination/epoch-1", **fields: Any) -> CreateIncidentRequest:
    return CreateIncidentRequest(idempotency_key=key, name="[AnomalyArmor] Column customer_id removed", **fields)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_every_call_the_product_makes(
    client: IncidentIoClient, account: Account, sim: Simulator, recorder: Recorder
) -> None:
    identity = await client.identity(account)
    statuses = await client.list_incident_statuses(account)
    severities = await client.list_severities(account)
    created = await client.create_incident(
        account, create_request(summary="Source: AnomalyArmor", severity_id=SEVERITY_MAJOR_ID, mode="test")
    )
    shown = await client.get_incident(account, created.id)
    closed = await client.edit_incident(
        account, created.id, EditIncidentRequest(incident_status_id=CLOSED_STATUS_ID, notify_incident_channel=True)
    )

    assert identity.name == KEY_NAME and set(identity.roles) == DEFAULT_ROLES
    assert {status.id for status in statuses if status.is_closed} == {CLOSED_STATUS_ID}
    assert [severity.name for severity in sorted(severities, key=lambda s: s.rank)] == ["Minor", "Major", "Critical"]
    assert created.reference == "INC-1" and created.mode == "test" and created.visibility == "public"
    assert created.incident_status.id == INVESTIGATING_STATUS_ID
    assert created.severity is not None and created.severity.id == SEVERITY_MAJOR_ID
    assert created.summary == "Source: AnomalyArmor" and created.permalink
    assert shown == created
    assert closed.incident_status.is_closed
    assert sim.incidents[0]["incident_status"]["id"] == CLOSED_STATUS_ID
    assert [(r.operation, r.status, r.key_name) for r in sim.requests] == [
        (operation, 200, KEY_NAME)
        for operation in (
            "identity",
            "list_incident_statuses",
            "list_severities",
            "create_incident",
            "show_incident",
            "edit_incident",
        )
    ]
    assert [(operation, status) for operation, status, _ in recorder.finished] == [
        (r.operation, 200) for r in sim.requests
    ]
    assert sim.requests[-1].body == {
        "incident": {"incident_status_id": CLOSED_STATUS_ID},
        "notify_incident_channel": True,
    }


async def test_each_account_brings_its_own_base_url(client: IncidentIoClient, sim: Simulator) -> None:
    async with Simulator(sim_config(keys={"other-secret": ApiKeyConfig(name="eu", roles=DEFAULT_ROLES)})) as eu:
        here = await client.identity(Account(base_url=sim.url, api_key=ApiKey(SECRET)))
        there = await client.identity(Account(base_url=eu.url + "/", api_key=ApiKey("other-secret")))

        assert (here.name, there.name) == (KEY_NAME, "eu")
        assert len(sim.requests) == len(eu.requests) == 1


async def test_401_is_unauthorized_and_not_retried(client: IncidentIoClient, sim: Simulator) -> None:
    with pytest.raises(Unauthorized) as caught:
        await client.identity(Account(base_url=sim.url, api_key=ApiKey("sk-not-a-key")))

    assert str(caught.value) == "HTTP 401: Unauthorized"
    assert caught.value.error_type == "authentication_error" and caught.value.request_id
    assert caught.value.messages == ("The API key provided is not valid, or has been revoked",)
    assert [r.status for r in sim.requests] == [401]


async def test_403_is_forbidden_names_the_missing_role_and_is_not_retried(
    client: IncidentIoClient, account: Account, sim: Simulator
) -> None:
    sim.set_key(SECRET, name=KEY_NAME, roles=["viewer"])

    with pytest.raises(Forbidden) as caught:
        await client.create_incident(account, create_request())

    assert str(caught.value) == "HTTP 403: Forbidden"
    assert any("incident_creator" in message for message in caught.value.messages)
    assert [r.status for r in sim.requests] == [403]


async def test_422_carries_incident_ios_message_field_and_request_id(
    client: IncidentIoClient, account: Account, sim: Simulator
) -> None:
    sim.config.severity_required = True

    with pytest.raises(ValidationFailed) as caught:
        await client.create_incident(account, create_request())

    error = caught.value
    assert error.status == 422 and error.fields == ("severity_id",) and error.request_id
    assert str(error) == (
        f"HTTP 422: A severity is required to open an incident (severity_id) (request_id {error.request_id})"
    )
    assert not error.retryable and error.operation == "create_incident"
    assert [r.status for r in sim.requests] == [422]


async def test_a_refused_close_shows_incident_ios_own_message(
    client: IncidentIoClient, account: Account, sim: Simulator
) -> None:
    sim.config.close_requires_role = "post_incident_flow_opt_out"
    incident = await client.create_incident(account, create_request())

    with pytest.raises(ValidationFailed, match="post-incident flow") as caught:
        await client.edit_incident(account, incident.id, EditIncidentRequest(incident_status_id=CLOSED_STATUS_ID))

    assert caught.value.fields == ("incident.incident_status_id",)
    assert [r.status for r in sim.requests] == [200, 422]


async def test_404_is_not_found_and_not_retried(client: IncidentIoClient, account: Account, sim: Simulator) -> None:
    with pytest.raises(NotFound, match=r"^HTTP 404: No incident with ID '01NOPE' \(request_id "):
        await client.get_incident(account, "01NOPE")

    assert [r.status for r in sim.requests] == [404]


async def test_429_with_retry_after_in_seconds_pauses_then_succeeds(
    client: IncidentIoClient, account: Account, sim: Simulator, recorder: Recorder, skip_time: SkipTime
) -> None:
    sim.faults.fail_next(1, status=429, retry_after="3")

    identity = await client.identity(account)

    assert identity.name == KEY_NAME
    assert recorder.statuses == [429, 200]
    assert recorder.waits == [pytest.approx(3.0)]
    assert skip_time.sleeps == [pytest.approx(3.0)]


async def test_429_with_retry_after_as_an_http_date(
    client: IncidentIoClient, account: Account, sim: Simulator, recorder: Recorder
) -> None:
    sim.faults.fail_next(1, status=429, retry_after=formatdate(time.time() + 5, usegmt=True))

    await client.identity(account)

    assert recorder.statuses == [429, 200]
    # The date has whole-second resolution, so the wait is somewhere in the last second before it.
    assert len(recorder.waits) == 1 and 3.9 <= recorder.waits[0] <= 5.0


async def test_429_without_a_usable_retry_after_backs_off_with_jitter(
    client: IncidentIoClient, account: Account, sim: Simulator, recorder: Recorder, skip_time: SkipTime
) -> None:
    sim.faults.fail_next(2, status=429, retry_after="whenever")

    await client.identity(account)

    assert recorder.statuses == [429, 429, 200]
    backoffs = [s for s in skip_time.sleeps if s not in recorder.waits]
    assert len(backoffs) == 2 and 0 <= backoffs[0] <= 0.5 and 0 <= backoffs[1] <= 1.0


async def test_a_retry_after_longer_than_backoff_max_is_handed_back_to_the_caller(
    account: Account, sim: Simulator, skip_time: SkipTime
) -> None:
    sim.faults.fail_next(1, status=429, retry_after="120")
    async with IncidentIoClient(backoff_max=30.0, clock=skip_time.clock, sleep=skip_time.sleep) as client:
        with pytest.raises(RateLimited) as caught:
            await client.identity(account)

    assert caught.value.retry_after == 120.0 and caught.value.retryable
    assert skip_time.sleeps == [] and len(sim.requests) == 1


async def test_a_429_pauses_every_caller_of_the_same_key(sim: Simulator) -> None:
    account = Account(base_url=sim.url, api_key=ApiKey(SECRET))
    followers: list[asyncio.Task[Any]] = []

    def start_a_follower(operation: str, status: int | None) -> None:
        if status == 429:
            followers.append(asyncio.ensure_future(shared.list_severities(account)))

    recorder = Recorder(on_finished=start_a_follower)
    sim.faults.fail_next(1, status=429, retry_after="1", operation="identity")
    shared = IncidentIoClient(observer=recorder)
    async with shared:
        await shared.identity(account)
        await asyncio.gather(*followers)

    by_operation = {(r.operation, r.status): r.at for r in sim.requests}
    throttled_at = by_operation[("identity", 429)]
    # The follower never saw the 429 itself, yet it waited out the server's second like the caller that did.
    assert by_operation[("list_severities", 200)] - throttled_at >= 0.95
    assert by_operation[("identity", 200)] - throttled_at >= 0.95
    assert len(recorder.waits) == 2


async def test_the_simulators_own_limit_with_http_dates_is_honoured(sim: Simulator) -> None:
    sim.config.rate_limit_per_minute, sim.config.refill_per_second = 1, 4.0
    sim.config.retry_after_form = "http-date"
    account = Account(base_url=sim.url, api_key=ApiKey(SECRET))
    # A client that believes in a much larger bucket, so only the server's 429s hold it back.
    async with IncidentIoClient(rate_limit=RateLimit(per_minute=100, refill_per_second=100.0)) as client:
        names = [(await client.identity(account)).name for _ in range(3)]

    assert names == [KEY_NAME] * 3
    assert [r.status for r in sim.requests].count(200) == 3


async def test_5xx_then_success(
    client: IncidentIoClient, account: Account, sim: Simulator, recorder: Recorder, skip_time: SkipTime
) -> None:
    sim.faults.fail_next(2, status=503)

    await client.list_incident_statuses(account)

    assert recorder.statuses == [503, 503, 200]
    assert len(skip_time.sleeps) == 2
    assert 0 <= skip_time.sleeps[0] <= 0.5 and 0 <= skip_time.sleeps[1] <= 1.0


async def test_retries_stop_after_max_attempts_with_the_last_error(
    account: Account, sim: Simulator, skip_time: SkipTime
) -> None:
    sim.faults.fail_next(10, status=500)
    async with IncidentIoClient(max_attempts=3, clock=skip_time.clock, sleep=skip_time.sleep) as client:
        with pytest.raises(ServerError, match=r"^HTTP 500: Injected failure \(HTTP 500\) \(request_id ") as caught:
            await client.list_severities(account)

    assert caught.value.retryable
    assert [r.status for r in sim.requests] == [500, 500, 500]
    assert len(skip_time.sleeps) == 2


async def test_a_hang_becomes_unreachable_after_the_timeout(account: Account, sim: Simulator) -> None:
    sim.faults.hang_next(2, seconds=60.0)
    recorder = Recorder()
    skip = SkipTime()
    async with IncidentIoClient(timeout=0.2, max_attempts=2, observer=recorder, sleep=skip.sleep) as client:
        with pytest.raises(Unreachable) as caught:
            await client.identity(account)

    assert str(caught.value) == "incident.io unreachable: timed out after 0.2s"
    assert caught.value.status is None and caught.value.retryable
    assert recorder.statuses == [None, None]
    # Each attempt gave up after the timeout, not after the 60 s the simulator held it for.
    assert all(0.15 <= seconds < 30.0 for _, _, seconds in recorder.finished)


async def test_connection_refused_is_unreachable(skip_time: SkipTime) -> None:
    account = Account(base_url=f"http://127.0.0.1:{free_port()}", api_key=ApiKey(SECRET))
    async with IncidentIoClient(max_attempts=2, clock=skip_time.clock, sleep=skip_time.sleep) as client:
        with pytest.raises(Unreachable) as caught:
            await client.identity(account)

    assert str(caught.value) == "incident.io unreachable: connection refused"
    assert len(skip_time.sleeps) == 1


async def test_a_create_whose_response_was_lost_is_retried_with_the_same_key_and_makes_one_incident(
    client: IncidentIoClient, account: Account, sim: Simulator, recorder: Recorder
) -> None:
    sim.faults.lose_response_next(1, operation="create_incident")

    incident = await client.create_incident(account, create_request())

    assert len(sim.incidents) == 1 and sim.incidents[0]["id"] == incident.id
    creates = [r for r in sim.requests if r.operation == "create_incident"]
    assert [r.status for r in creates] == [502, 200]
    assert creates[0].body == creates[1].body
    assert creates[0].body["idempotency_key"] == "alert-1/destination/epoch-1"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_no_4xx_but_429_is_ever_retried(
    client: IncidentIoClient, account: Account, sim: Simulator, status: int
) -> None:
    sim.faults.fail_next(5, status=status)

    with pytest.raises(IncidentIoError) as caught:
        await client.get_incident(account, "01ANY")

    assert caught.value.status == status and not caught.value.retryable
    assert len(sim.requests) == 1


async def test_a_burst_of_2000_creates_is_paced_without_a_single_429() -> None:
    limit = RateLimit(per_minute=50, refill_per_second=300.0)
    total = 2000
    config = sim_config(rate_limit_per_minute=limit.per_minute, refill_per_second=limit.refill_per_second)
    recorder = Recorder()
    # httpcore rescans its whole pool per request; a few connections carry 300/s on loopback with CPU to spare.
    pacing_client = IncidentIoClient(rate_limit=limit, observer=recorder, max_connections=10)
    async with Simulator(config) as sim, pacing_client as client:
        account = Account(base_url=sim.url, api_key=ApiKey(SECRET))
        started = time.monotonic()
        incidents = await asyncio.gather(
            *(client.create_incident(account, create_request(f"burst-{n}")) for n in range(total))
        )
        elapsed = time.monotonic() - started
        requests = sim.requests

    throttled = sum(r.status == 429 for r in requests)
    arrivals = sorted(r.at for r in requests)
    sustained = (len(arrivals) - limit.per_minute) / (arrivals[-1] - arrivals[0])
    print(
        f"\n{total} creates in {elapsed:.2f}s: sustained {sustained:.1f} req/s against a refill of "
        f"{limit.refill_per_second:.0f}/s (bucket {limit.per_minute}), {throttled} x 429, "
        f"longest pacing wait {max(recorder.waits):.2f}s"
    )
    assert throttled == 0
    assert len({incident.id for incident in incidents}) == total == len(requests)
    assert sustained <= limit.refill_per_second * 1.02


async def test_a_burst_of_background_edits_never_holds_back_a_create() -> None:
    limit = RateLimit(per_minute=5, refill_per_second=20.0)
    config = sim_config(rate_limit_per_minute=limit.per_minute, refill_per_second=limit.refill_per_second)
    edits_answered = 0
    burst_sent = asyncio.Event()

    def answered(operation: str, status: int | None) -> None:
        nonlocal edits_answered
        edits_answered += operation == "edit_incident"
        if edits_answered >= 3:
            burst_sent.set()

    # Fewer connections than queued edits: the edits waiting for the rate limit must not hold the create's.
    pacing_client = IncidentIoClient(rate_limit=limit, max_connections=4, observer=Recorder(answered))
    async with Simulator(config) as sim, pacing_client as client:
        account = Account(base_url=sim.url, api_key=ApiKey(SECRET))
        opened = await client.create_incident(account, create_request("open-one"))
        edits = [
            asyncio.ensure_future(
                client.edit_incident(
                    account, opened.id, EditIncidentRequest(summary=f"edit {n}"), priority=Priority.BACKGROUND
                )
            )
            for n in range(30)
        ]
        await burst_sent.wait()
        created = await client.create_incident(account, create_request("while-editing"))
        await asyncio.gather(*edits)
        order = [r.operation for r in sim.requests]

    assert created.id != opened.id
    assert not any(r.status == 429 for r in sim.requests)
    # The create went at the next free slot, ahead of the edits still queued when it came.
    assert order.count("edit_incident") == 30
    assert order[order.index("create_incident", 1) :].count("edit_incident") >= 15


def fake_incident_io(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    """An incident.io that answers exactly as told, for responses the simulator never gives."""
    return httpx.MockTransport(answer)


async def test_requests_carry_the_bearer_key_a_user_agent_and_json() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"identity": {"name": "n", "roles": []}, "added_later": True})

    account = Account(base_url="https://incident.example/api/", api_key=ApiKey(SECRET))
    async with IncidentIoClient(transport=fake_incident_io(answer)) as client:
        await client.identity(account)

    request = seen[0]
    assert str(request.url) == "https://incident.example/api/v1/identity"
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.headers["User-Agent"].startswith("incidentio-operator/")
    assert request.headers["Accept"] == "application/json"


async def test_an_incident_id_cannot_escape_its_path() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(404, json={"type": "not_found", "status": 404, "errors": []})

    account = Account(base_url="https://incident.example", api_key=ApiKey(SECRET))
    async with IncidentIoClient(transport=fake_incident_io(answer)) as client:
        with pytest.raises(NotFound):
            await client.get_incident(account, "../../v1/identity?x=1")

    assert seen == ["/v2/incidents/..%2F..%2Fv1%2Fidentity%3Fx%3D1"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>maintenance</html>", "HTTP 200: the response is not JSON"),
        (b'{"incident": {"id": "01A"}}', "unexpected response from incident.io: incident.reference is missing"),
    ],
)
async def test_a_success_the_product_cannot_use_is_an_unexpected_response(body: bytes, problem: str) -> None:
    account = Account(base_url="https://incident.example", api_key=ApiKey(SECRET))
    transport = fake_incident_io(lambda request: httpx.Response(200, content=body))
    async with IncidentIoClient(transport=transport) as client:
        with pytest.raises(UnexpectedResponse, match=problem) as caught:
            await client.get_incident(account, "01A")

    assert not caught.value.retryable


async def test_a_key_echoed_back_in_an_error_is_redacted() -> None:
    echoed = {
        "type": "validation_error",
        "status": 422,
        "errors": [{"message": f"Bearer {SECRET} is not allowed here", "source": {"field": "name"}}],
    }
    account = Account(base_url="https://incident.example", api_key=ApiKey(SECRET))
    transport = fake_incident_io(lambda request: httpx.Response(422, json=echoed))
    async with IncidentIoClient(transport=transport) as client:
        with pytest.raises(ValidationFailed) as caught:
            await client.create_incident(account, create_request())

    assert str(caught.value) == "HTTP 422: Bearer <redacted> is not allowed here (name)"
    assert caught.value.messages == ("Bearer <redacted> is not allowed here",)


async def test_the_api_key_appears_nowhere(caplog: pytest.LogCaptureFixture, sim: Simulator) -> None:
    caplog.set_level(logging.DEBUG)
    account = Account(base_url=sim.url, api_key=ApiKey(SECRET))
    sim.config.severity_required = True
    sim.faults.fail_next(1, status=429, retry_after="0")
    sim.faults.fail_next(3, status=503, operation="list_severities")
    sim.faults.hang_next(1, seconds=30.0, operation="list_incident_statuses")
    failures: list[IncidentIoError] = []

    async def expect_failure(call: Awaitable[Any]) -> None:
        try:
            await call
        except IncidentIoError as error:
            failures.append(error)

    recorder = Recorder()
    skip = SkipTime()
    async with IncidentIoClient(timeout=0.2, max_attempts=3, observer=recorder, sleep=skip.sleep) as client:
        await client.identity(account)
        await expect_failure(client.list_incident_statuses(account))
        await expect_failure(client.list_severities(account))
        await expect_failure(client.create_incident(account, create_request()))
        await expect_failure(client.get_incident(account, "01NOPE"))
        sim.set_key(SECRET, name=KEY_NAME, roles=["viewer"])
        await expect_failure(client.edit_incident(account, "01NOPE", EditIncidentRequest(summary="s")))
        sim.revoke_key(SECRET)
        await expect_failure(client.identity(account))
    refused = Account(base_url=f"http://127.0.0.1:{free_port()}", api_key=ApiKey(SECRET))
    async with IncidentIoClient(max_attempts=1) as client:
        await expect_failure(client.identity(refused))

    assert {type(failure) for failure in failures} == {
        Unreachable,
        ServerError,
        ValidationFailed,
        NotFound,
        Forbidden,
        Unauthorized,
    }
    texts = [repr(account), str(account), f"{account}", repr(account.api_key), str(account.api_key)]
    for failure in failures:
        texts += [str(failure), repr(failure), *map(str, failure.args), *failure.messages]
        assert failure.__cause__ is None and failure.__context__ is None
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), record.exc_text or ""]
    texts += [repr(entry) for entry in sim.requests]
    texts += [repr(finished) for finished in recorder.finished]
    assert len(caplog.records) >= 10
    assert not [text for text in texts if SECRET in text]


def test_an_api_key_compares_by_value_and_refuses_to_be_pickled() -> None:
    key = ApiKey(SECRET)

    assert key == ApiKey(SECRET) and key != ApiKey("other") and hash(key) == hash(ApiKey(SECRET))
    assert key.reveal() == SECRET
    assert copy.deepcopy(Account(base_url="u", api_key=key)).api_key == key
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(ValueError):
        ApiKey("")
