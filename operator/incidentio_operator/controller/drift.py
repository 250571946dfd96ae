"""Drift checks: open incidents read back from incident.io, to notice the ones a responder ended there.

Each open incident is read at most once per its destination's ``spec.driftCheck.interval``, and all
the reads made with one API key together stay within ``DRIFT_SHARE`` (5 %) of that key's rate limit
(incident.io: 1,200 a minute, refilled at 20/s, so one read a second at most). The budget is a token
bucket per API key, taken before each read; with more open incidents than it allows, each incident is
read less often (oldest check first), never the budget exceeded. The reads still go through the
client's own per-key pacing, so they also count against the key's whole limit, behind its creates and closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from incidentio_operator.api import DataAlert, Destination, ObjectRef
from incidentio_operator.controller.alerts import AlertReconciler
from incidentio_operator.controller.credentials import Credentials
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.controller.store import Store
from incidentio_operator.decisions import delivery as lifecycle
from incidentio_operator.incidentio import ApiKey, Incident, IncidentIoClient, IncidentIoError, NotFound, Priority
from incidentio_operator.kube import KubeError

logger = logging.getLogger("incidentio_operator.controller.drift")

DRIFT_SHARE = 0.05
# Seconds between two rounds of checks.
TICK = 5.0


@dataclass(frozen=True)
class OpenIncident:
    alert: ObjectRef
    label: str
    epoch: int
    incident_id: str


class ReadBudget:
    """A token bucket of drift-check reads for one API key: ``rate`` reads a second.

    It holds one round's worth (``rate * tick``, at least 2): a round every ``tick`` seconds can spend
    what accrued since the last, so the reads use the whole share and, over any window, exceed it by
    at most one round's worth.
    """

    def __init__(self, rate: float, now: float, tick: float = TICK) -> None:
        self.capacity = max(2.0, rate * tick)
        self._rate, self._tokens, self._at = rate, self.capacity, now

    def take(self, now: float) -> bool:
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class DriftChecker:
    """Runs on the active replica's live objects only; a read that finds the incident over tells the alert."""

    def __init__(
        self,
        store: Store,
        incidentio: IncidentIoClient,
        credentials: Credentials,
        alerts: AlertReconciler,
        metrics: Metrics,
        *,
        key_refill_per_second: float,
        allow_cross_namespace: bool,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._incidentio = incidentio
        self._credentials = credentials
        self._alerts = alerts
        self._metrics = metrics
        self._rate = key_refill_per_second * DRIFT_SHARE
        self._cross = allow_cross_namespace
        self._monotonic = monotonic
        self._budgets: dict[ApiKey, ReadBudget] = {}
        # When each open incident was last read (or first seen open).
        self._checked: dict[OpenIncident, float] = {}
        # Each holding alert's open incidents, with the status they were read from: a round parses only
        # the statuses that changed since the last, not every open incident's alert every TICK.
        self._open: dict[ObjectRef, tuple[str | bytes, tuple[OpenIncident, ...]]] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.check_due()
            except (KubeError, IncidentIoError) as exc:
                logger.info("drift check round failed: %s", exc)

    async def check_due(self) -> int:
        """Read every open incident whose check is due and the budget allows; returns how many were read."""
        now = self._monotonic()
        seen: dict[OpenIncident, float] = {}
        reads: list[tuple[Destination, OpenIncident]] = []
        # One pass per round, not one per destination, and over the alerts holding an incident only (the
        # store keeps them apart): settled alerts, most of them, hold nothing, and the pass runs on the loop.
        holding = [
            entry.model
            for entry in self._store.alerts.holding_entries()
            if entry.live and not lifecycle.closing(entry.model)
        ]
        self._open = {alert.ref: self._open_of(alert) for alert in holding}
        for destination in list(self._store.destinations.live()):
            spec = destination.spec
            if spec is None or spec.suspend or not destination.ready:
                continue
            interval = spec.drift_check_interval.total_seconds()
            incidents = sorted(self._open_incidents(destination, holding), key=lambda o: self._checked.get(o, now))
            for incident in incidents:
                seen[incident] = self._checked.get(incident, now)
            if interval <= 0:
                continue
            due = [o for o in incidents if now - seen[o] >= interval]
            if due:
                reads += await self._within_budget(destination, due, now)
        for _, incident in reads:
            seen[incident] = now
        self._checked = seen
        await asyncio.gather(*(self._read(destination, incident) for destination, incident in reads))
        return len(reads)

    async def _within_budget(
        self, destination: Destination, due: list[OpenIncident], now: float
    ) -> list[tuple[Destination, OpenIncident]]:
        account = await self._credentials.account(destination)
        budget = self._budgets.setdefault(account.api_key, ReadBudget(self._rate, now))
        taken = []
        for incident in due:
            if not budget.take(now):
                break
            taken.append((destination, incident))
        return taken

    def _open_of(self, alert: DataAlert) -> tuple[str | bytes, tuple[OpenIncident, ...]]:
        cached = self._open.get(alert.ref)
        if cached is not None and cached[0] == alert.status_json:
            return cached
        return alert.status_json, tuple(_open_in(alert))

    def _open_incidents(self, destination: Destination, holding: list[DataAlert]) -> Iterator[OpenIncident]:
        ref = destination.ref
        for alert in holding:
            if alert.ref.namespace == ref.namespace or self._cross:
                for incident in self._open[alert.ref][1]:
                    if lifecycle.destination_ref(incident.label, alert.ref.namespace) == ref:
                        yield incident

    async def _read(self, destination: Destination, incident: OpenIncident) -> None:
        assert destination.spec is not None
        label = str(destination.ref)
        try:
            account = await self._credentials.account(destination)
            # A read waits behind the key's creates and closes (Priority.BACKGROUND): it never delays one.
            found: Incident | None = await self._incidentio.get_incident(
                account, incident.incident_id, priority=Priority.BACKGROUND
            )
        except NotFound:
            found = None
        except (IncidentIoError, KubeError) as exc:
            self._metrics.drift_checks.labels(label, "error").inc()
            logger.debug("drift check of %s failed: %s", incident.incident_id, exc)
            return
        how = lifecycle.how_it_ended(found, destination.spec.closed_status_id)
        self._metrics.drift_checks.labels(label, "ended" if how else "open").inc()
        if how:
            logger.info("dataalert %s: its incident in %s was %s", incident.alert, label, how)
            self._alerts.incident_ended(incident.alert, incident.label, incident.epoch, how)


def _open_in(alert: DataAlert) -> Iterator[OpenIncident]:
    for item in alert.status.get("deliveries") or ():
        if not isinstance(item, Mapping) or item.get("state") != "Open" or not item.get("incidentId"):
            continue
        label = str(item.get("destination") or "")
        yield OpenIncident(alert.ref, label, int(item.get("epoch") or 0), str(item["incidentId"]))
