"""After every full list, objects the list no longer contains are gone: the store forgets them.

kopf relists a kind whenever its watch restarts: after ``410 Gone`` (etcd compacted past the last
resourceVersion it saw, as when an API server restarts or is upgraded), after a dropped connection,
and when a paused standby replica becomes active. It hands the listed objects to the handlers as
events of type None, but says nothing of the objects missing from the list: an object deleted while
the watch was down would stay in the store for good (a deleted rule would keep routing). So when kopf
lists, the controller lists the same kind itself and forgets what that list does not contain. A relist
that lists nothing hands nothing over, so the small kinds (rules, destinations, blackouts) are also
resynced on every sweep; alerts, which may be tens of thousands, only after a relist.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from incidentio_operator.api import API_VERSION, ObjectRef
from incidentio_operator.controller.store import Index
from incidentio_operator.kube import KubeClient, KubeError

logger = logging.getLogger("incidentio_operator.controller.resync")

Forget = Callable[[str, ObjectRef], None]
Listed = Callable[[str], None]


class Resync:
    """Debounced per kind: one list of our own once kopf's listing has stopped arriving for ``delay`` seconds.

    ``on_listed`` is told the kind when each such listing is over, for work that must see all of it first.
    """

    def __init__(
        self,
        kube: KubeClient,
        indexes: Mapping[str, Index[Any]],
        scopes: Sequence[str | None],
        forget: Forget,
        *,
        delay: float = 2.0,
        on_listed: Listed | None = None,
    ) -> None:
        self._kube = kube
        self._indexes = indexes
        self._scopes = scopes
        self._forget = forget
        self._delay = delay
        # Told the kind's name once each listing is over (before its resync runs).
        self._on_listed = on_listed
        # Per kind: the index's sequence when kopf's listing began (objects stored since are new).
        self._burst_start: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._running: set[asyncio.Task[list[ObjectRef]]] = set()

    def listed(self, resource: str) -> None:
        """kopf handed over one object of a full list of ``resource``: resync once the listing is over."""
        index = self._indexes.get(resource)
        if index is None:
            return
        self._burst_start.setdefault(resource, index.sequence)
        loop = asyncio.get_running_loop()
        pending = self._timers.pop(resource, None)
        if pending is not None:
            pending.cancel()
        self._timers[resource] = loop.call_later(self._delay, self._start, resource)

    def listing(self, resource: str) -> bool:
        """True while kopf is handing over a full list of ``resource``: its objects stopped arriving less than
        ``delay`` seconds ago, so more may follow (a paged list of 50,000 alerts takes a minute or more)."""
        return resource in self._timers

    def _start(self, resource: str) -> None:
        self._timers.pop(resource, None)
        if self._on_listed is not None:
            self._on_listed(resource)
        task = asyncio.create_task(self.resync(resource), name=f"resync-{resource}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def resync(self, resource: str) -> list[ObjectRef]:
        """List ``resource`` and forget every held object the list does not contain; returns what was forgotten."""
        index = self._indexes[resource]
        held_before = self._burst_start.pop(resource, index.sequence)
        if not any(entry.sequence <= held_before for entry in index.entries.values()):
            return []  # everything held arrived with this listing (a first start): nothing can be stale
        since = index.sequence
        listed: set[ObjectRef] = set()
        try:
            for scope in self._scopes:
                for body in await self._kube.list(API_VERSION, resource, scope):
                    listed.add(ObjectRef.of(body))
        except KubeError as exc:
            logger.warning("%s: no resync after a relist, the list failed (%s); the next relist retries", resource, exc)
            return []
        gone = index.absent_from(listed, since)
        for ref in gone:
            logger.info("%s %s: deleted while the watch was down (not in a full list); forgotten", resource, ref)
            self._forget(resource, ref)
        return gone

    async def aclose(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
