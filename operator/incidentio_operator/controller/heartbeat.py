"""The heartbeats: each destination's ``spec.heartbeat`` pinged on its interval while the operator is healthy.

incident.io pages when a heartbeat source stops receiving pings (POST /v2/heartbeat/{id}/ping), so the
operator pings only while it is doing its job (decisions.heartbeat judges that) and lets the heartbeat
lapse on purpose when it is not. The result goes to the destination's ``status.heartbeat``.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable

from incidentio_operator.api import API_VERSION, DESTINATIONS, Destination, ObjectRef, format_time
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.controller.store import Store
from incidentio_operator.controller.tokens import HEARTBEAT, AlertSourceTokens
from incidentio_operator.controller.workqueue import ObjectKey, WorkQueue
from incidentio_operator.decisions.heartbeat import Vitals, heartbeat_status, judge
from incidentio_operator.incidentio import Forbidden, IncidentIoClient, IncidentIoError, Unauthorized
from incidentio_operator.kube import KubeClient, KubeError

logger = logging.getLogger("incidentio_operator.controller.heartbeat")
# How often due heartbeats are looked for; the shortest heartbeat interval allowed is 10 s.
TICK_SECONDS = 1.0


class Heartbeats:
    """Per destination with a heartbeat: when it is next due, and the last ping incident.io accepted."""

    def __init__(
        self,
        store: Store,
        queue: WorkQueue[ObjectKey],
        kube: KubeClient,
        incidentio: IncidentIoClient,
        tokens: AlertSourceTokens,
        metrics: Metrics,
        clock: Callable[[], datetime.datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._queue = queue
        self._kube = kube
        self._incidentio = incidentio
        self._tokens = tokens
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._last_watch_event: float | None = None
        self._handled_at_last_beat: dict[ObjectRef, int] = {}
        self._last_beat: dict[ObjectRef, float] = {}
        self._write_error = ""
        self._due: dict[ObjectRef, float] = {}

    def watch_event(self) -> None:
        """A watch delivered an event: the watches are live (and this replica is the active one)."""
        self._last_watch_event = self._monotonic()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            await self.beat_due()

    async def beat_due(self) -> None:
        """Beat every heartbeat whose interval has passed."""
        now = self._monotonic()
        for destination in list(self._store.destinations):
            spec = destination.spec
            if spec is None or spec.heartbeat is None or spec.suspend or destination.deleting:
                self._due.pop(destination.ref, None)
                continue
            if destination.ref not in self._due:
                # Half an interval first: time for kopf's peering to pause a standby started alongside.
                self._due[destination.ref] = now + spec.heartbeat.interval.total_seconds() / 2
            if now < self._due[destination.ref]:
                continue
            self._due[destination.ref] = now + spec.heartbeat.interval.total_seconds()
            await self.beat(destination)

    async def beat(self, destination: Destination) -> None:
        """Ping the destination's heartbeat if the operator is healthy, and write what happened."""
        assert destination.spec is not None and destination.spec.heartbeat is not None
        heartbeat, ref = destination.spec.heartbeat, destination.ref
        handled, now_monotonic, event = self._queue.handled, self._monotonic(), self._last_watch_event
        silence = None if event is None else now_monotonic - event
        previous = self._last_beat.get(ref)
        since = None if previous is None else event is not None and event > previous
        handled_since = handled - self._handled_at_last_beat.get(ref, 0)
        verdict = judge(Vitals(silence, since, self._queue.depth, handled_since, self._write_error))
        self._handled_at_last_beat[ref], self._last_beat[ref] = handled, now_monotonic
        last = dict(destination.status.get("heartbeat") or {})
        last_ping = (
            str(last.get("lastPingAt") or "")
            if last.get("alertSourceConfigId") == heartbeat.alert_source_config_id
            else ""
        )
        now = format_time(self._clock())
        if verdict.why_not:
            logger.warning("heartbeat of %s not pinged: %s", ref, verdict.why_not)
            self._metrics.heartbeat_pings.labels(str(ref), "Skipped").inc()
            status = heartbeat_status(heartbeat.alert_source_config_id, now, "Skipped", verdict.why_not, last_ping)
        else:
            result, message = await self._ping(destination)
            self._metrics.heartbeat_pings.labels(str(ref), result).inc()
            last_ping = now if result == "Succeeded" else last_ping
            status = heartbeat_status(heartbeat.alert_source_config_id, now, result, message, last_ping)
        if verdict.may_write:
            await self._write(ref, status)

    async def _ping(self, destination: Destination) -> tuple[str, str]:
        """(Succeeded | Failed, what happened); never the token."""
        assert destination.spec is not None and destination.spec.heartbeat is not None
        heartbeat = destination.spec.heartbeat
        try:
            source = await self._tokens.source(destination, purpose=HEARTBEAT)
            await self._incidentio.ping_heartbeat(source)
        except KubeError:
            return "Failed", f"no heartbeat token in {heartbeat.token} (spec.heartbeat.tokenSecretRef)"
        except (Unauthorized, Forbidden) as error:
            self._tokens.refuse(destination.ref, HEARTBEAT)
            return "Failed", (
                f"incident.io refused the heartbeat token (HTTP {error.status}); put the heartbeat source's token "
                f"in {heartbeat.token} (spec.heartbeat.tokenSecretRef)"
            )
        except IncidentIoError as error:
            return "Failed", f"the ping failed: {error}"
        return "Succeeded", f"pinged heartbeat {heartbeat.alert_source_config_id}"

    async def _write(self, ref: ObjectRef, status: dict[str, object]) -> None:
        try:
            await self._kube.patch(
                API_VERSION,
                DESTINATIONS,
                ref.namespace,
                ref.name,
                {"status": {"heartbeat": status}},
                subresource="status",
            )
        except KubeError as exc:
            self._write_error = str(exc)
            logger.warning("heartbeat of %s: the status write failed (%s)", ref, exc)
            return
        self._write_error = ""

    def forget(self, ref: ObjectRef) -> None:
        self._due.pop(ref, None)
        self._handled_at_last_beat.pop(ref, None)
        self._last_beat.pop(ref, None)
