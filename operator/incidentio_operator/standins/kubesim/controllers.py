"""The stand-in's control plane: controllers that act on stored objects as kube-controller-manager and the
apiextensions server do, each a loop on the stand-in's event loop that syncs the keys changes mark pending.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from .resources import ResourceType
from .store import Store
from .watchcache import Wakeup


class Controller:
    """A level-triggered controller: every store change may mark a key pending, and `sync(key)` acts on it.

    Runs while the stand-in serves. Unlike the real controllers, which retry on a timer, it syncs a key
    again whenever something it watches changes.
    """

    name = "controller"

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._wakeup: Wakeup | None = None
        self._task: asyncio.Task[None] | None = None
        store.listeners.append(self._changed)

    def key_for(self, rt: ResourceType, obj: Mapping[str, Any]) -> str | None:
        """The key a change of `obj` makes pending, or None; called under the store's lock."""
        raise NotImplementedError

    def initial_keys(self) -> Iterable[str]:
        """The keys already pending when the controller starts."""
        raise NotImplementedError

    def sync(self, key: str) -> None:
        """Act on one key; called on the event loop."""
        raise NotImplementedError

    def start(self) -> None:
        self._wakeup = Wakeup()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"kubesim-{self.name}")
        with self._store.lock:
            for key in self.initial_keys():
                self._enqueue(key)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._wakeup = None

    def _changed(self, rt: ResourceType, obj: Mapping[str, Any]) -> None:
        if self._wakeup is None:
            return
        key = self.key_for(rt, obj)
        if key is not None:
            self._enqueue(key)

    def _enqueue(self, key: str) -> None:
        self._pending[key] = None
        if self._wakeup is not None:
            self._wakeup.set()

    async def _run(self) -> None:
        wakeup = self._wakeup
        while wakeup is not None:
            await wakeup.wait()
            wakeup.clear()
            with self._store.lock:
                keys = list(self._pending)
                self._pending.clear()
            for key in keys:
                self.sync(key)
