"""Kubernetes Events about the operator's objects, posted in the background so none holds up a reconciliation."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from incidentio_operator.api import ObjectRef
from incidentio_operator.kube import KubeClient, KubeError

logger = logging.getLogger("incidentio_operator.controller.events")


class EventRecorder:
    """Posts Events (``kubectl describe`` shows them); a refused Event is logged at debug level and dropped."""

    def __init__(self, kube: KubeClient, clock: Callable[[], datetime.datetime]) -> None:
        self._kube = kube
        self._clock = clock
        self._background: set[asyncio.Task[None]] = set()

    def post(self, involved: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Post an Event about ``involved`` (apiVersion, kind and identifying metadata); nothing when it is empty."""
        if not involved:
            return
        task = asyncio.create_task(self._send(involved, type_, reason, message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send(self, involved: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        try:
            await self._kube.post_event(involved, type_=type_, reason=reason, message=message, now=self._clock())
        except KubeError as exc:
            logger.debug("event %s on %s not posted: %s", reason, ObjectRef.of(involved), exc)

    async def aclose(self) -> None:
        """Cancel the Events still on their way."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
