"""Watch streams: one chunked HTTP 200 response of newline-separated watch events per open watch.

As https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes describes:
replay after a resourceVersion, bookmarks, sendInitialEvents ending with a bookmark, timeoutSeconds.
Once the request has passed admission, an error (an expired resourceVersion included) is one ERROR
event carrying a Status, after which the stream ends (apiserver/pkg/storage/cacher/cacher.go).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import errors
from .errors import ApiError
from .faults import RecordedCall
from .routing import Target
from .selectors import field_selector, label_selector
from .store import Store
from .watchcache import Watcher

_POLL = 1.0
_STREAM_ERRORS = (ConnectionError, RuntimeError)


@dataclass(frozen=True)
class WatchOptions:
    """The query parameters of a watch request that shape its stream."""

    since: str | None
    bookmarks: bool
    initial: bool
    timeout: float | None

    @classmethod
    def parse(cls, query: Any) -> WatchOptions:
        try:
            timeout = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else None
        except ValueError as exc:
            raise errors.bad_request(f"invalid timeoutSeconds: {query['timeoutSeconds']!r}") from exc
        return cls(
            since=query.get("resourceVersion"),
            bookmarks=query.get("allowWatchBookmarks") in ("true", "1"),
            initial=query.get("sendInitialEvents") in ("true", "1"),
            timeout=timeout,
        )


def bookmark(watcher: Watcher, rv: str, *, initial_end: bool = False) -> bytes:
    metadata: dict[str, Any] = {"resourceVersion": rv}
    if initial_end:
        metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": watcher.rt.kind, "apiVersion": watcher.api_version, "metadata": metadata}
    return json.dumps({"type": "BOOKMARK", "object": obj}).encode() + b"\n"


class WatchStream:
    """Serves one watch request until it times out, the client goes, or the stand-in ends or cuts it."""

    def __init__(self, store: Store, bookmark_interval: float) -> None:
        self._store = store
        self._bookmark_interval = bookmark_interval

    async def serve(
        self,
        request: web.Request,
        target: Target,
        call: RecordedCall,
        response: web.StreamResponse,
        failure: ApiError | None,
    ) -> None:
        """Stream to a prepared response; `failure` (an injected fault) is sent as the ERROR event."""
        options = WatchOptions.parse(request.query)
        watcher = Watcher(
            target.rt,
            target.version,
            target.namespace,
            label_selector(request.query.get("labelSelector")),
            field_selector(request.query.get("fieldSelector"), target.rt.plural),
        )
        failure = failure or self._store.open_watch(watcher, options.since, options.initial)
        try:
            if failure is not None:
                await response.write(json.dumps({"type": "ERROR", "object": failure.to_status()}).encode() + b"\n")
                await response.write_eof()
                return
            if await self._stream(request, watcher, call, response, options):
                await response.write_eof()
        except _STREAM_ERRORS:
            return
        finally:
            self._store.close_watch(watcher)

    async def _stream(
        self,
        request: web.Request,
        watcher: Watcher,
        call: RecordedCall,
        response: web.StreamResponse,
        options: WatchOptions,
    ) -> bool:
        """Write events until the stream must end; True when it ends cleanly, False when it was cut."""
        loop = asyncio.get_running_loop()
        deadline = None if options.timeout is None else loop.time() + options.timeout
        # With sendInitialEvents, a bookmark marks where the current state ends and live events begin.
        initial_left = watcher.initial_count if options.initial else None
        last_bookmark = loop.time()
        while True:
            chunk: list[bytes] = []
            while watcher.pending and initial_left != 0:
                event_type, event = watcher.pending.popleft()
                chunk.append(event.line(event_type, watcher.api_version))
                call.count_sent([event.obj], len(event.body(watcher.api_version)))
                if initial_left is not None:
                    initial_left -= 1
            if initial_left == 0:
                if options.bookmarks:
                    chunk.append(bookmark(watcher, watcher.initial_rv, initial_end=True))
                initial_left = None
            if chunk:
                await response.write(b"".join(chunk))
            if watcher.dropped:
                if request.transport is not None:
                    request.transport.abort()
                return False
            now = loop.time()
            if watcher.closed or (deadline is not None and now >= deadline):
                return True
            if request.transport is None or request.transport.is_closing():
                return False
            if options.bookmarks and now - last_bookmark >= self._bookmark_interval:
                rv = self._store.quiet_rv(watcher)
                if rv is not None:
                    await response.write(bookmark(watcher, rv))
                    last_bookmark = now
            wait = _POLL
            if options.bookmarks:
                wait = min(wait, self._bookmark_interval - (now - last_bookmark))
            if deadline is not None:
                wait = min(wait, deadline - now)
            await watcher.wait(max(wait, 0.0))
