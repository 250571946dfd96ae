"""A keyed work queue: each key is handled by one worker at a time, repeats coalesce, delays are timers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from incidentio_operator.api import ObjectRef

K = TypeVar("K", bound=Hashable)
# The controller's keys: the kind's resource name and the object's coordinates.
ObjectKey = tuple[str, ObjectRef]


class WorkQueue(Generic[K]):
    """The controller-runtime pattern: a key added while it is being handled is handled again after."""

    def __init__(self) -> None:
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._active: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        # Keys handled so far: the heartbeat tells a draining queue from a stuck one by it.
        self.handled = 0

    def add(self, key: K) -> None:
        if key in self._queued:
            return
        if key in self._active:
            self._dirty.add(key)
            return
        self._queued.add(key)
        self._ready.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Handle the key after ``delay`` seconds; an earlier pending timer wins over a later one."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        existing = self._timers.get(key)
        if existing is not None:
            if existing.when() <= when:
                return
            existing.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    @property
    def depth(self) -> int:
        return len(self._queued)

    @property
    def delayed(self) -> int:
        return len(self._timers)

    @property
    def idle(self) -> bool:
        return not self._queued and not self._active

    async def run_worker(self, handle: Callable[[K], Awaitable[None]]) -> None:
        """Handle keys as they come, giving the event loop a turn between two keys.

        ``Queue.get`` on a queue with keys in it returns without suspending, and a key whose handling needs
        no I/O (an alert at rest looked at again) does not suspend either: without the turn, a rule edit
        that queues every alert of a namespace held the loop for the whole batch (10,000 alerts: a lag in
        the 2.5-s bucket; watch events, probes and timers all waited).
        """
        while True:
            await asyncio.sleep(0)
            key = await self._ready.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await handle(key)
            finally:
                self.handled += 1
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
