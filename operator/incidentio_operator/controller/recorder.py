"""Kubernetes Events about the operator's objects, posted in the background so none holds up a reconciliation."""

from __future__ import annotations

import asyncio
import collections
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from incidentio_operator.api import ObjectRef
from incidentio_operator.kube import KubeClient, KubeError

logger = logging.getLogger("incidentio_operator.controller.events")

# Events in flight at once. The workers' status writes share the Kubernetes client's connections with
# the Events: in a burst, one task per Event put thousands of posts in the connection pool's queue
# ahead of the next alert's writes. A few senders let the writes through first; the Events follow.
SENDERS = 4
# Events waiting beyond this are dropped (logged), as client-go's event broadcaster drops when its
# queue is full: a flood of Events must not grow the operator's memory without bound.
MAX_WAITING = 10_000


class _Event(NamedTuple):
    involved: Mapping[str, Any]
    type_: str
    reason: str
    message: str
    at: datetime.datetime


class EventRecorder:
    """Posts Events (``kubectl describe`` shows them); a refused Event is logged at debug level and dropped."""

    def __init__(self, kube: KubeClient, clock: Callable[[], datetime.datetime]) -> None:
        self._kube = kube
        self._clock = clock
        self._waiting: collections.deque[_Event] = collections.deque()
        self._senders: set[asyncio.Task[None]] = set()

    def post(self, involved: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Post an Event about ``involved`` (apiVersion, kind and identifying metadata); nothing when it is empty.

        The Event carries the time of this call, however long it waits behind others to be sent.
        """
        if not involved:
            return
        if len(self._waiting) >= MAX_WAITING:
            logger.debug("event %s on %s dropped: %d events waiting", reason, ObjectRef.of(involved), MAX_WAITING)
            return
        self._waiting.append(_Event(involved, type_, reason, message, self._clock()))
        if len(self._senders) < SENDERS:
            task = asyncio.create_task(self._send_waiting())
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)

    async def _send_waiting(self) -> None:
        while self._waiting:
            event = self._waiting.popleft()
            try:
                await self._kube.post_event(
                    event.involved, type_=event.type_, reason=event.reason, message=event.message, now=event.at
                )
            except KubeError as exc:
                logger.debug("event %s on %s not posted: %s", event.reason, ObjectRef.of(event.involved), exc)

    async def aclose(self) -> None:
        """Drop the Events still waiting and cancel those on their way."""
        self._waiting.clear()
        for task in self._senders:
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
