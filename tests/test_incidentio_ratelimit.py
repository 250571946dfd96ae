"""Per-key pacing: the token bucket and the limiter, on a virtual clock."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from incidentio_operator.incidentio import ApiKey, RateLimit
from incidentio_operator.incidentio.ratelimit import Priority, RateLimiter, TokenBucket

T = TypeVar("T")

pytestmark = pytest.mark.timeout(30)


class VirtualTime:
    """A clock and a sleep that only move when every task under test is blocked on a timer."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._sequence = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + seconds, self._sequence, future))
        self._sequence += 1
        await future

    async def run(self, *awaitables: Awaitable[T]) -> list[T]:
        """Run the awaitables concurrently, jumping the clock from one timer to the next."""
        tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
        while not all(task.done() for task in tasks):
            await self._until_blocked(tasks)
            if all(task.done() for task in tasks):
                break
            deadline, _, future = heapq.heappop(self._timers)
            self.now = max(self.now, deadline)
            future.set_result(None)
        return [task.result() for task in tasks]

    async def _until_blocked(self, tasks: list[asyncio.Task[T]]) -> None:
        # Bounded: each round lets every runnable task reach its next await.
        for _ in range(10_000):
            pending = [t for t in self._timers if not t[2].done()]
            if sum(not task.done() for task in tasks) <= len(pending):
                return
            await asyncio.sleep(0)
        raise AssertionError("tasks neither finished nor blocked on the virtual clock")


def test_a_full_bucket_serves_its_burst_then_one_request_per_refill_interval() -> None:
    bucket = TokenBucket(RateLimit(per_minute=3, refill_per_second=2.0), now=100.0)

    assert [bucket.reserve(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve(100.0) == pytest.approx(0.5)
    assert bucket.reserve(100.0) == pytest.approx(1.0)
    # Refill is continuous: 1.5 s later the two reserved slots are paid for and one more token is due.
    assert bucket.reserve(101.5) == pytest.approx(0.0)


def test_an_idle_bucket_refills_only_to_its_capacity() -> None:
    bucket = TokenBucket(RateLimit(per_minute=2, refill_per_second=10.0), now=0.0)

    assert [bucket.reserve(1000.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve(1000.0) == pytest.approx(0.1)


def test_rate_limit_refuses_an_empty_bucket_or_no_refill() -> None:
    with pytest.raises(ValueError):
        RateLimit(per_minute=0)
    with pytest.raises(ValueError):
        RateLimit(refill_per_second=0.0)


async def test_hundreds_of_waiters_are_served_in_arrival_order_at_the_refill_rate() -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=10, refill_per_second=100.0), clock=time.clock, sleep=time.sleep)
    key = ApiKey("key-one")
    served: list[tuple[int, float]] = []

    async def caller(index: int) -> float:
        waited = await limiter.acquire(key)
        served.append((index, time.now))
        return waited

    waits = await time.run(*(caller(index) for index in range(500)))

    assert [index for index, _ in served] == list(range(500))
    assert waits[:10] == [0.0] * 10
    for index, at in served[10:]:
        assert at == pytest.approx((index - 9) / 100.0)
    # Each waiter sleeps once, straight to its slot: no polling.
    assert len(time.sleeps) == 490
    # In any window the limiter never lets through more than the bucket plus what refilled in it.
    times = [at for _, at in served]
    for start in range(len(times)):
        for end in range(start, min(len(times), start + 60)):
            assert end - start + 1 <= 10 + (times[end] - times[start]) * 100.0 + 1e-6


async def test_different_keys_never_wait_for_each_other() -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=2, refill_per_second=1.0), clock=time.clock, sleep=time.sleep)
    busy, other = ApiKey("key-busy"), ApiKey("key-other")

    waits = await time.run(*(limiter.acquire(busy) for _ in range(4)), limiter.acquire(other))

    assert waits == [0.0, 0.0, pytest.approx(1.0), pytest.approx(2.0), 0.0]


async def test_equal_keys_share_one_bucket() -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=1, refill_per_second=4.0), clock=time.clock, sleep=time.sleep)

    waits = await time.run(limiter.acquire(ApiKey("same")), limiter.acquire(ApiKey("same")))

    assert waits == [0.0, pytest.approx(0.25)]


async def test_a_pause_holds_back_every_waiter_of_the_key_and_keeps_their_order() -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=5, refill_per_second=10.0), clock=time.clock, sleep=time.sleep)
    key, other = ApiKey("paused"), ApiKey("unpaused")
    served: list[tuple[int, float]] = []

    async def caller(index: int) -> None:
        await limiter.acquire(key)
        served.append((index, time.now))

    async def server_says_empty() -> None:
        await time.sleep(0.05)
        limiter.pause(key, 2.0)

    await time.run(*(caller(index) for index in range(10)), server_says_empty())

    assert [index for index, _ in served] == list(range(10))
    # Five went at once; the other five had slots at 0.1 .. 0.5 s but the 429 at 0.05 s moved them.
    assert [at for _, at in served[:5]] == [0.0] * 5
    assert [at for _, at in served[5:]] == pytest.approx([2.05, 2.15, 2.25, 2.35, 2.45])
    assert await limiter.acquire(other) == 0.0


async def test_a_pause_without_a_wait_empties_the_bucket_for_one_refill_interval() -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=100, refill_per_second=4.0), clock=time.clock, sleep=time.sleep)
    key = ApiKey("k")
    limiter.pause(key, None)

    assert await time.run(limiter.acquire(key)) == [pytest.approx(0.25)]


@pytest.mark.parametrize(
    ("retry_after", "expected_waits"),
    [
        # The queue's first slot (1 s) is already later than the server asks for: nothing moves.
        (0.1, [1.0, 2.0, 3.0]),
        # The server wants 2 s from 0.5 s: the queue moves 1 s later, keeping its spacing.
        (1.5, [2.0, 3.0, 4.0]),
    ],
)
async def test_a_pause_moves_the_queue_only_as_far_as_the_server_asks(
    retry_after: float, expected_waits: list[float]
) -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=1, refill_per_second=1.0), clock=time.clock, sleep=time.sleep)
    key = ApiKey("k")

    async def server_says_empty() -> None:
        await time.sleep(0.5)
        limiter.pause(key, retry_after)

    waits = await time.run(*(limiter.acquire(key) for _ in range(4)), server_says_empty())

    assert waits[:4] == [0.0, *(pytest.approx(wait) for wait in expected_waits)]


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=1, refill_per_second=1.0), clock=time.clock, sleep=time.sleep)
    key = ApiKey("k")
    await limiter.acquire(key)
    waiter = asyncio.ensure_future(limiter.acquire(key))
    await time.run(_until_sleeping(time, 1))
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert limiter.bucket(key).waiting == 0
    assert limiter.bucket(key).reserve(time.now) == pytest.approx(1.0)


async def _until_sleeping(time: VirtualTime, count: int) -> None:
    for _ in range(1000):
        if len(time.sleeps) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError("the waiter never went to sleep")


async def test_no_tokens_are_banked_while_requests_are_in_flight() -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=3, refill_per_second=10.0), clock=time.clock, sleep=time.sleep)
    key = ApiKey("k")
    assert await time.run(*(limiter.acquire(key) for _ in range(3))) == [0.0, 0.0, 0.0]
    time.now += 1.0

    # The server may not have seen those three yet; its bucket may still be full and not refilling.
    assert await time.run(limiter.acquire(key)) == [pytest.approx(0.1)]

    for _ in range(4):
        limiter.release(key)
    time.now += 1.0
    assert await time.run(*(limiter.acquire(key) for _ in range(3))) == [0.0, 0.0, 0.0]
    assert limiter.bucket(key).in_flight == 3


async def test_a_foreground_caller_takes_the_first_slot_background_callers_wait_for() -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=1, refill_per_second=1.0), clock=time.clock, sleep=time.sleep)
    key = ApiKey("k")
    served: list[tuple[str, float]] = []

    async def caller(name: str, priority: Priority, after: float = 0.0) -> None:
        if after:
            await time.sleep(after)
        await limiter.acquire(key, priority)
        served.append((name, time.now))

    await time.run(
        caller("first", Priority.FOREGROUND),
        *(caller(f"update-{n}", Priority.BACKGROUND) for n in range(3)),
        caller("create", Priority.FOREGROUND, after=0.5),
    )

    # The create came half a second after three updates had queued; it still went at the first free slot.
    assert served == [
        ("first", 0.0),
        ("create", pytest.approx(1.0)),
        ("update-0", pytest.approx(2.0)),
        ("update-1", pytest.approx(3.0)),
        ("update-2", pytest.approx(4.0)),
    ]


async def test_background_callers_leave_a_tenth_of_the_bucket_to_the_foreground() -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=20, refill_per_second=10.0), clock=time.clock, sleep=time.sleep)
    key = ApiKey("k")

    async def answered(priority: Priority) -> float:
        waited = await limiter.acquire(key, priority)
        limiter.release(key)
        return waited

    updates = await time.run(*(answered(Priority.BACKGROUND) for _ in range(19)))
    creates = await time.run(*(answered(Priority.FOREGROUND) for _ in range(2)))

    # 18 updates went at once; the 19th waited for a refill rather than take one of the last two tokens.
    assert updates[:18] == [0.0] * 18 and updates[18] == pytest.approx(0.1)
    assert creates == [0.0, 0.0]


async def test_foreground_callers_alone_are_paced_as_before() -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=20, refill_per_second=10.0), clock=time.clock, sleep=time.sleep)

    waits = await time.run(*(limiter.acquire(ApiKey("k")) for _ in range(21)))

    assert waits[:20] == [0.0] * 20 and waits[20] == pytest.approx(0.1)


async def test_a_cancelled_background_waiter_leaves_the_others_their_slots() -> None:
    time = VirtualTime()
    limiter = RateLimiter(RateLimit(per_minute=1, refill_per_second=1.0), clock=time.clock, sleep=time.sleep)
    key = ApiKey("k")
    await limiter.acquire(key)
    waiter = asyncio.ensure_future(limiter.acquire(key, Priority.BACKGROUND))
    await time.run(_until_sleeping(time, 1))
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert limiter.bucket(key).background_waiting == 0
    assert limiter.bucket(key).reserve(time.now, Priority.BACKGROUND) == pytest.approx(1.0)
