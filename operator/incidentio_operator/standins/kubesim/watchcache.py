"""The stand-in's watch cache: the bounded history of changes, its compaction, and the open watches it feeds.

Modelled on kube-apiserver's watch cache (k8s.io/apiserver/pkg/storage/cacher/watch_cache.go): a watch
resumed from a resourceVersion older than the oldest one the history can still replay from is refused
with 410 Expired "too old resource version: X (Y)", where Y is that oldest resourceVersion.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .errors import ApiError
from .resources import ResourceType
from .selectors import Predicate


class Wakeup:
    """An asyncio event of the loop that created it, which any thread may set."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._event = asyncio.Event()

    def set(self) -> None:
        if threading.get_ident() == self._thread:
            self._event.set()
        else:
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, within: float | None = None) -> None:
        """Wait until set, or until `within` seconds have passed (None: no limit)."""
        try:
            await asyncio.wait_for(self._event.wait(), within)
        except TimeoutError:
            return


@dataclass
class WatchEvent:
    """One change in the history; objects are shared, never copied: stored objects are never mutated."""

    rv: int
    type: str
    resource: tuple[str, str]
    obj: dict[str, Any]
    old: dict[str, Any] | None
    _bodies: dict[str, bytes] = field(default_factory=dict)

    def body(self, api_version: str) -> bytes:
        """The object's JSON as one watcher's apiVersion shows it, serialised once and shared."""
        cached = self._bodies.get(api_version)
        if cached is None:
            obj = self.obj if self.obj.get("apiVersion") == api_version else {**self.obj, "apiVersion": api_version}
            cached = self._bodies[api_version] = json.dumps(obj, separators=(",", ":")).encode()
        return cached

    def line(self, event_type: str, api_version: str) -> bytes:
        """The newline-terminated watch event, as the real server streams it."""
        return b'{"type":"' + event_type.encode() + b'","object":' + self.body(api_version) + b"}\n"


class Watcher:
    """One open watch stream: its filters and the events waiting to be written to it."""

    def __init__(
        self,
        rt: ResourceType,
        version: str,
        namespace: str | None,
        labels: Predicate | None,
        fields: Predicate | None,
    ) -> None:
        self.rt = rt
        self.api_version = rt.api_version(version)
        self.namespace = namespace
        self._labels = labels
        self._fields = fields
        self.pending: collections.deque[tuple[str, WatchEvent]] = collections.deque()
        self.dropped = False
        self.closed = False
        self.initial_count = 0
        self.initial_rv = "0"
        self._wakeup = Wakeup()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return (self._labels is None or self._labels(obj)) and (self._fields is None or self._fields(obj))

    def offer(self, event: WatchEvent) -> bool:
        """Queue the event as this watcher sees it (selector transitions become ADDED/DELETED)."""
        now = self.matches(event.obj)
        before = event.old is not None and self.matches(event.old)
        if event.type == "MODIFIED":
            event_type = "MODIFIED" if now and before else "ADDED" if now else "DELETED" if before else ""
        else:
            event_type = event.type if now else ""
        if event_type:
            self.pending.append((event_type, event))
        return bool(event_type)

    def notify(self) -> None:
        self._wakeup.set()

    def drop(self) -> None:
        self.dropped = True
        self.notify()

    def close(self) -> None:
        self.closed = True
        self.notify()

    async def wait(self, within: float) -> None:
        """Wait until something is queued, the stream must end, or the timeout passes."""
        self._wakeup.clear()
        if self.pending or self.dropped or self.closed:
            return
        await self._wakeup.wait(within)


class WatchCache:
    """The last `capacity` changes of every resource, and the watches they are fanned out to.

    Not thread-safe on its own: the store calls it under its lock.
    """

    def __init__(self, capacity: int) -> None:
        self._history: collections.deque[WatchEvent] = collections.deque()
        self._capacity = capacity
        # The oldest resourceVersion a watch may resume from: everything after it is still in the history.
        self.oldest_rv = 0
        self._watchers: dict[tuple[str, str], set[Watcher]] = collections.defaultdict(set)

    def publish(self, event: WatchEvent) -> None:
        if len(self._history) >= self._capacity:
            self.oldest_rv = self._history.popleft().rv
        self._history.append(event)
        for watcher in self._watchers.get(event.resource, ()):
            if watcher.offer(event):
                watcher.notify()

    def compact(self, rv: int) -> None:
        """Forget every change up to `rv`, as etcd compaction or a rebuilt watch cache after a restart does."""
        while self._history and self._history[0].rv <= rv:
            self._history.popleft()
        self.oldest_rv = max(self.oldest_rv, rv)

    def replay(self, watcher: Watcher, since: str) -> ApiError | None:
        """Queue the changes after `since` for the watcher, or the error the real server answers instead."""
        try:
            after = int(since)
        except ValueError:
            return errors.bad_request(f"invalid resource version {since!r}")
        if after < self.oldest_rv:
            return errors.expired(f"too old resource version: {after} ({self.oldest_rv})")
        replay: list[WatchEvent] = []
        for event in reversed(self._history):
            if event.rv <= after:
                break
            if event.resource == watcher.rt.key:
                replay.append(event)
        for event in reversed(replay):
            watcher.offer(event)
        return None

    def register(self, watcher: Watcher) -> None:
        self._watchers[watcher.rt.key].add(watcher)

    def unregister(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.rt.key, set()).discard(watcher)

    def close_all(self, key: tuple[str, str]) -> None:
        """End every watch of a resource that stops being served (its CRD was deleted)."""
        for watcher in self._watchers.pop(key, set()):
            watcher.close()

    def watchers(self, plural: str | None = None) -> Iterable[Watcher]:
        return [w for key, ws in self._watchers.items() for w in ws if plural is None or key[1] == plural]
