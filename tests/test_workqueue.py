"""The keyed work queue: repeats coalesce, a key re-added while handled runs again, the earliest timer wins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from incidentio_operator.controller.workqueue import WorkQueue

BOUND = 2.0  # seconds any expected handling may take; only reached when the queue misbehaves


class Recorder:
    """A handler that records the keys it handles; ``gate`` holds a handling until the test opens it."""

    def __init__(self) -> None:
        self.handled: list[str] = []
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()
        self._changed = asyncio.Condition()
        self.max_concurrent_per_key: dict[str, int] = {}
        self._running: dict[str, int] = {}

    async def __call__(self, key: str) -> None:
        self._running[key] = self._running.get(key, 0) + 1
        self.max_concurrent_per_key[key] = max(self.max_concurrent_per_key.get(key, 0), self._running[key])
        self.started.set()
        async with self._changed:
            self._changed.notify_all()
        try:
            await self.gate.wait()
        finally:
            self._running[key] -= 1
        async with self._changed:
            self.handled.append(key)
            self._changed.notify_all()

    @property
    def running(self) -> int:
        return sum(self._running.values())

    async def until(self, done: Callable[[list[str]], bool]) -> None:
        """Wait, within the bound, until the handled keys satisfy ``done``."""
        await self._until(lambda: done(self.handled))

    async def until_running(self, count: int) -> None:
        await self._until(lambda: self.running >= count)

    async def _until(self, predicate: Callable[[], bool]) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(wait(), BOUND)


@asynccontextmanager
async def workers(
    queue: WorkQueue[str], handler: Callable[[str], Awaitable[None]], count: int = 1
) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(queue.run_worker(handler)) for _ in range(count)]
    try:
        yield
    finally:
        queue.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_added_key_is_handled() -> None:
    queue: WorkQueue[str] = WorkQueue()
    handler = Recorder()
    async with workers(queue, handler):
        queue.add("alert-a")
        await handler.until(lambda handled: handled == ["alert-a"])


async def test_key_added_several_times_before_handling_is_handled_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    handler = Recorder()
    queue.add("alert-a")
    queue.add("alert-a")
    queue.add("alert-b")
    queue.add("alert-a")

    assert queue.depth == 2
    async with workers(queue, handler):
        await handler.until(lambda handled: len(handled) >= 2)
        assert queue.idle, "nothing else is queued"

    assert handler.handled == ["alert-a", "alert-b"]


async def test_key_added_while_being_handled_is_handled_again_afterwards() -> None:
    queue: WorkQueue[str] = WorkQueue()
    handler = Recorder()
    handler.gate.clear()
    async with workers(queue, handler, count=2):
        queue.add("alert-a")
        await asyncio.wait_for(handler.started.wait(), BOUND)

        queue.add("alert-a")
        queue.add("alert-a")
        assert queue.depth == 0, "the key waits for its running handling instead of queueing beside it"
        handler.gate.set()

        await handler.until(lambda handled: handled == ["alert-a", "alert-a"])
        assert queue.idle, "nothing else is queued"

    assert handler.handled == ["alert-a", "alert-a"], "repeats during the handling coalesce into one more run"
    assert handler.max_concurrent_per_key == {"alert-a": 1}


async def test_different_keys_are_handled_side_by_side() -> None:
    queue: WorkQueue[str] = WorkQueue()
    handler = Recorder()
    handler.gate.clear()
    async with workers(queue, handler, count=2):
        queue.add("alert-a")
        queue.add("alert-b")
        await handler.until_running(2)
        handler.gate.set()
        await handler.until(lambda handled: sorted(handled) == ["alert-a", "alert-b"])


async def test_queue_is_idle_once_everything_is_handled() -> None:
    queue: WorkQueue[str] = WorkQueue()
    handler = Recorder()
    assert queue.idle
    queue.add("alert-a")
    assert not queue.idle
    async with workers(queue, handler):
        await handler.until(lambda handled: handled == ["alert-a"])
        assert queue.idle
        assert queue.depth == 0


async def test_key_added_after_a_delay_is_handled_once_the_timer_fires() -> None:
    queue: WorkQueue[str] = WorkQueue()
    handler = Recorder()
    async with workers(queue, handler):
        queue.add_after("alert-a", 0.01)
        assert queue.delayed == 1
        assert handler.handled == []

        await handler.until(lambda handled: handled == ["alert-a"])
        assert queue.delayed == 0


async def test_zero_or_negative_delay_adds_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue()

    queue.add_after("alert-a", 0)
    queue.add_after("alert-b", -5)

    assert queue.depth == 2
    assert queue.delayed == 0


async def test_earlier_timer_replaces_a_later_one() -> None:
    queue: WorkQueue[str] = WorkQueue()
    handler = Recorder()
    async with workers(queue, handler):
        queue.add_after("alert-a", 60)
        queue.add_after("alert-a", 0.01)
        assert queue.delayed == 1

        await handler.until(lambda handled: handled == ["alert-a"])
        assert queue.delayed == 0, "the 60s timer was cancelled, not left to fire again"


async def test_later_timer_does_not_postpone_an_earlier_one() -> None:
    queue: WorkQueue[str] = WorkQueue()
    handler = Recorder()
    async with workers(queue, handler):
        queue.add_after("alert-a", 0.01)
        queue.add_after("alert-a", 60)
        assert queue.delayed == 1

        await handler.until(lambda handled: handled == ["alert-a"])
        assert queue.delayed == 0


async def test_timers_of_different_keys_are_independent() -> None:
    queue: WorkQueue[str] = WorkQueue()
    handler = Recorder()
    async with workers(queue, handler):
        queue.add_after("alert-b", 0.02)
        queue.add_after("alert-a", 0.01)
        assert queue.delayed == 2

        await handler.until(lambda handled: sorted(handled) == ["alert-a", "alert-b"])


async def test_close_cancels_pending_timers() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("alert-a", 0.01)
    queue.add_after("alert-b", 0.01)

    queue.close()

    assert queue.delayed == 0
    later: WorkQueue[str] = WorkQueue()
    handler = Recorder()
    async with workers(later, handler):
        later.add_after("later", 0.02)
        await handler.until(lambda handled: handled == ["later"])
    # The closed queue's timers were due before this one: had they not been cancelled, they would have fired.
    assert queue.depth == 0


async def test_a_worker_gives_the_loop_a_turn_between_keys_that_need_no_io() -> None:
    queue: WorkQueue[str] = WorkQueue()
    keys = [f"alert-{n}" for n in range(1000)]
    handled: list[str] = []
    drained = asyncio.Event()
    seen_at: list[int] = []  # how many keys were handled when a callback queued at the first got its turn

    async def at_rest(key: str) -> None:  # a handling that never suspends (an alert at rest looked at again)
        handled.append(key)
        if len(handled) == 1:
            asyncio.get_running_loop().call_soon(lambda: seen_at.append(len(handled)))
        if len(handled) == len(keys):
            drained.set()

    for key in keys:
        queue.add(key)
    async with workers(queue, at_rest):
        await asyncio.wait_for(drained.wait(), BOUND)
    assert seen_at and seen_at[0] < 10, f"the callback waited for {seen_at} of {len(keys)} keys"
