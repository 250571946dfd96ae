"""The controller: feeds kopf's watch events into the store, and runs the work queue through one reconciler per kind."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from incidentio_operator.api import (
    ALERTS,
    API_VERSION,
    BLACKOUTS,
    DESTINATIONS,
    RULES,
    AlertBlackout,
    AlertRule,
    DataAlert,
    Destination,
    ObjectRef,
)
from incidentio_operator.api.alert import OWNER_LABEL
from incidentio_operator.api.common import utcnow
from incidentio_operator.controller.alerts import ORPHANS, AlertReconciler
from incidentio_operator.controller.blackouts import BlackoutReconciler
from incidentio_operator.controller.credentials import Credentials
from incidentio_operator.controller.destinations import DestinationReconciler
from incidentio_operator.controller.drift import DriftChecker
from incidentio_operator.controller.gate import CallGate
from incidentio_operator.controller.heap import HeapKeeper
from incidentio_operator.controller.heartbeat import Heartbeats
from incidentio_operator.controller.looplag import sample_lag
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.controller.noise import NoiseControl
from incidentio_operator.controller.recorder import EventRecorder
from incidentio_operator.controller.resync import Resync
from incidentio_operator.controller.rules import RuleReconciler
from incidentio_operator.controller.settings import Settings
from incidentio_operator.controller.store import Index, Store
from incidentio_operator.controller.tally import DeliveryTally
from incidentio_operator.controller.tokens import AlertSourceTokens
from incidentio_operator.controller.workqueue import ObjectKey, WorkQueue
from incidentio_operator.incidentio import IncidentIoClient
from incidentio_operator.kube import KubeClient, KubeError

logger = logging.getLogger("incidentio_operator.controller")


class Controller:
    """What kopf's handlers talk to: ``observe`` for every watch event, ``start`` and ``stop`` around the run."""

    def __init__(
        self,
        settings: Settings,
        kube: KubeClient,
        incidentio: IncidentIoClient,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.incidentio = incidentio
        self.metrics = metrics
        self.store = Store()
        self.queue: WorkQueue[ObjectKey] = WorkQueue()
        self.gate = CallGate(self.queue, settings.call_slots)
        self.recorder = EventRecorder(kube, clock)
        credentials, tally = Credentials(kube), DeliveryTally()
        self.tokens = AlertSourceTokens(kube)
        shared = (settings, self.store, self.queue, kube)
        self.noise = NoiseControl(settings, self.store, self.queue, metrics, self.recorder, clock)
        self.rules = RuleReconciler(
            *shared, clock, noise=self.noise, alerts_listing=lambda: self.resync.listing(ALERTS)
        )
        self.blackouts = BlackoutReconciler(self.store, self.queue, kube, clock, noise=self.noise)
        self.destinations = DestinationReconciler(
            *shared,
            incidentio,
            metrics,
            clock,
            gate=self.gate,
            credentials=credentials,
            tokens=self.tokens,
            recorder=self.recorder,
            tally=tally,
            status_changed=self._destination_changed,
        )
        self.alerts = AlertReconciler(
            *shared,
            incidentio,
            metrics,
            clock,
            gate=self.gate,
            credentials=credentials,
            tokens=self.tokens,
            recorder=self.recorder,
            tally=tally,
            rules=self.rules,
            destinations=self.destinations,
            noise=self.noise,
        )
        indexes: dict[str, Index[Any]] = {
            ALERTS: self.store.alerts,
            DESTINATIONS: self.store.destinations,
            RULES: self.store.rules,
            BLACKOUTS: self.store.blackouts,
        }
        self.resync = Resync(kube, indexes, self.scopes(), self.forget, on_listed=self._listed)
        self.drift = DriftChecker(
            self.store,
            incidentio,
            credentials,
            self.alerts,
            metrics,
            key_refill_per_second=settings.rate_limit_refill,
            allow_cross_namespace=settings.allow_cross_namespace,
        )
        self.heartbeats = Heartbeats(self.store, self.queue, kube, incidentio, self.tokens, metrics, clock)
        self._tasks: list[asyncio.Task[None]] = []
        self._heap = HeapKeeper(thaw_every=round(3600 / max(settings.sweep_interval, 1.0)))  # hourly thaw
        for kind in (ALERTS, DESTINATIONS, RULES, BLACKOUTS):
            metrics.reconcile_errors.labels(kind)
        metrics.deliveries_pending.set_function(lambda: self.delivery_counts()[0])
        metrics.deliveries_waiting.set_function(lambda: self.delivery_counts()[1])
        metrics.queue_depth.set_function(lambda: self.queue.depth)

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load destinations and rules before any alert is looked at, then start the workers.

        Nothing is queued from this listing: work starts with kopf's watch events, which a
        standby replica paused by kopf's peering does not receive.
        """
        for scope in self.scopes():
            try:
                for body in await self.kube.list(API_VERSION, DESTINATIONS, scope):
                    destination = Destination.from_body(body)
                    self.store.destinations.upsert(destination, body, live=False)
                    self._export_readiness(destination.ref, destination)
                for body in await self.kube.list(API_VERSION, RULES, scope):
                    rule = AlertRule.from_body(body)
                    self.store.rules.upsert(rule, body, live=False)
                    self.noise.rule_seen(rule)
            except KubeError as exc:
                if not exc.not_found:
                    raise
                # The CRDs are not installed (yet): kopf starts watching when they appear.
                logger.warning("The alerting.armor.dev CRDs are not installed; waiting for them (%s)", exc)
            await self._load_noise_control(scope)
        self._tasks = [
            asyncio.create_task(self.queue.run_worker(self._handle), name=f"worker-{n}")
            for n in range(self.settings.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._sweep(), name="sweep"))
        self._tasks.append(asyncio.create_task(self.drift.run(), name="drift-checks"))
        self._tasks.append(asyncio.create_task(self.heartbeats.run(), name="heartbeats"))
        self._tasks.append(asyncio.create_task(sample_lag(self.metrics.event_loop_lag), name="loop-lag"))

    def scopes(self) -> list[str | None]:
        """Where the operator lists: each exact namespace it watches, or the whole cluster (None).

        Exact namespaces are listed one by one, so a namespace-scoped Role is enough; patterns (or no
        namespaces: the whole cluster) need a cluster-wide list, as kopf's watches do.
        """
        namespaces = self.settings.namespaces
        exact: list[str | None] = [ns for ns in namespaces if not any(ch in ns for ch in "*?[!")]
        return exact if exact and len(exact) == len(namespaces) else [None]

    async def _load_noise_control(self, scope: str | None) -> None:
        """Blackouts, and the incidents rules with a cooldown or daily cap already let through, before any alert.

        kopf's watch hands alerts over one by one; without the listing, an alert looked at early in a
        restart could not see the incidents of alerts still to come, and slip past a cooldown or a cap.
        """
        try:
            for body in await self.kube.list(API_VERSION, BLACKOUTS, scope):
                self.store.blackouts.upsert(AlertBlackout.from_body(body), body, live=False)
            if any(rule.spec is not None and rule.spec.noise_controlled for rule in self.store.rules):
                for body in await self.kube.list(API_VERSION, ALERTS, scope):
                    self.noise.alert_changed(DataAlert.from_body(body))
        except KubeError as exc:
            if not exc.not_found:
                raise
            logger.warning("The AlertBlackout CRD is not installed; noise control waits for it (%s)", exc)

    async def stop(self) -> None:
        await self.resync.aclose()
        self.queue.close()
        self.rules.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.recorder.aclose()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            for resource in (RULES, DESTINATIONS, BLACKOUTS):  # an empty relist hands nothing over (resync.py)
                await self.resync.resync(resource)
            for destination in self.store.destinations.live():
                self.queue.add((DESTINATIONS, destination.ref))
            for entry in self.store.alerts.unsettled_entries():
                if entry.live:
                    self.queue.add((ALERTS, entry.model.ref))
            self.noise.expire()
            self._heap.after_sweep()

    # ----------------------------------------------------------------- events from kopf

    def observe(self, resource: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        """One watch event: update the store and queue what must be looked at again.

        kopf hands the objects of a full list (at start, and whenever a watch restarts) as events of
        type None; once such a listing is over, what it did not contain is forgotten (see resync.py).
        """
        deleted = event_type == "DELETED"
        self.heartbeats.watch_event()
        if event_type is None:
            self.resync.listed(resource)
            self._heap.listed()
        elif resource == ALERTS:
            self.rules.alerts_watched()
        if resource == ALERTS:
            self._observe_alert(body, deleted, event_type is None)
        elif resource == DESTINATIONS:
            self._observe_destination(body, deleted)
        elif resource == RULES:
            self._observe_rule(body, deleted)
        elif resource == BLACKOUTS:
            self._observe_blackout(body, deleted)

    def echo(self, event_type: str | None, body: Mapping[str, Any]) -> bool:
        """A DataAlert added or modified in a version the store holds (in a burst, mostly our writes' echoes)."""
        self.heartbeats.watch_event()
        version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        return event_type in ("ADDED", "MODIFIED") and self.store.alerts.known(ObjectRef.of(body), version)

    def _observe_alert(self, body: Mapping[str, Any], deleted: bool, listed: bool) -> None:
        ref = ObjectRef.of(body)
        labels = (body.get("metadata") or {}).get("labels") or {}
        if not self._mine(labels):
            if self.store.alerts.get(ref) is not None:
                # Another replica's shard now, or never this one's: that replica finishes it.
                logger.info("dataalert %s left this operator's shard; its owner finishes it", ref)
                self.rules.alert_changed(self.store.alerts.get(ref), None)
                self.store.alerts.remove(ref)
            return
        if deleted:
            # The last state, as the DELETED event carries it: incidents it still holds are closed from it.
            self.forget(ALERTS, ref, last=DataAlert.from_body(body))
            return
        previous = self.store.alerts.get(ref)
        if self.store.alerts.upsert(DataAlert.from_body(body), body):
            self.alerts.observed(self.store.alerts.get(ref), listed=listed)
        self.rules.alert_changed(previous, self.store.alerts.get(ref))
        self.noise.alert_changed(self.store.alerts.get(ref))

    def _mine(self, labels: Mapping[str, str]) -> bool:
        """In this replica's shard, or holding incidents this replica opened (its owner label)."""
        return self.settings.in_shard(labels) or labels.get(OWNER_LABEL) == self.settings.owner

    def _observe_destination(self, body: Mapping[str, Any], deleted: bool) -> None:
        ref = ObjectRef.of(body)
        if deleted:
            self.forget(DESTINATIONS, ref)
            return
        before = self.store.destinations.get(ref)
        after = Destination.from_body(body)
        if self.store.destinations.upsert(after, body):
            self.queue.add((DESTINATIONS, ref))
            self._destination_changed(ref, before, after)

    def _observe_rule(self, body: Mapping[str, Any], deleted: bool) -> None:
        ref = ObjectRef.of(body)
        for blackout in self.store.blackouts.in_namespace(ref.namespace):
            self.queue.add((BLACKOUTS, blackout.ref))  # the rules it holds may have changed
        if deleted:
            self.forget(RULES, ref)
            return
        before = self.store.rules.get(ref)
        rule = AlertRule.from_body(body)
        self.noise.rule_seen(rule)
        if self.store.rules.upsert(rule, body):
            self.queue.add((RULES, ref))
            # Its alerts may still be arriving (a restart lists them after the rules): count once they have.
            self.rules.schedule_recount(ref)
            if before is None or before.generation != rule.generation:
                self._wake_alerts(ref.namespace, everything=True)

    def _listed(self, resource: str) -> None:
        if resource == ALERTS:
            self.rules.alerts_listed()

    def forget(self, resource: str, ref: ObjectRef, *, last: DataAlert | None = None) -> None:
        """The object is gone (a DELETED event, or absent from a full list): drop it and all that hangs on it."""
        if resource == ALERTS:
            previous = self.store.alerts.get(ref)
            self.store.alerts.remove(ref)
            self.rules.alert_changed(previous, None)
            gone = last or previous
            if gone is not None:
                self.alerts.orphaned(gone)
        elif resource == DESTINATIONS:
            before = self.store.destinations.get(ref)
            self.store.destinations.remove(ref)
            self.gate.forget(ref)
            self.destinations.forget(ref)
            self.heartbeats.forget(ref)
            self._destination_changed(ref, before, None)
        elif resource == RULES:
            self.store.rules.remove(ref)
            self.rules.forget(ref)
            self.noise.forget_rule(ref)
            self._wake_alerts(ref.namespace, everything=True)
        elif resource == BLACKOUTS:
            self._blackout_changed(ref, self.store.blackouts.get(ref), None)
            self.store.blackouts.remove(ref)

    def _observe_blackout(self, body: Mapping[str, Any], deleted: bool) -> None:
        ref = ObjectRef.of(body)
        if deleted:
            self.forget(BLACKOUTS, ref)
            return
        before = self.store.blackouts.get(ref)
        if self.store.blackouts.upsert(AlertBlackout.from_body(body), body):
            self.queue.add((BLACKOUTS, ref))
            self._blackout_changed(ref, before, self.store.blackouts.get(ref))

    def _blackout_changed(self, ref: ObjectRef, before: AlertBlackout | None, after: AlertBlackout | None) -> None:
        # Deferred alerts wait for the blackout's end as it was: an edit or a delete may set them free now.
        if before is None or after is None or before.generation != after.generation:
            self._wake_alerts(ref.namespace, everything=False)

    def _export_readiness(self, ref: ObjectRef, destination: Destination | None) -> None:
        suspended = destination is None or (destination.spec is not None and destination.spec.suspend)
        self.metrics.destination_readiness(str(ref), None if destination is None or suspended else destination.ready)

    def _destination_changed(self, ref: ObjectRef, before: Destination | None, after: Destination | None) -> None:
        self._export_readiness(ref, after)
        was_ready = before is not None and before.ready
        is_ready = after is not None and after.ready
        # A change of the not-Ready reason matters too: waiting alerts and rules quote it.
        if (
            before is None
            or after is None
            or was_ready != is_ready
            or before.generation != after.generation
            or before.not_ready_reason != after.not_ready_reason
        ):
            for rule in self.store.rules.in_namespace(ref.namespace):
                self.queue.add((RULES, rule.ref))
            self._wake_alerts(ref.namespace, everything=False)

    def _wake_alerts(self, namespace: str, *, everything: bool) -> None:
        alerts = self.store.alerts
        refs = list(alerts.entries) if everything else [entry.model.ref for entry in alerts.unsettled_entries()]
        for ref in refs:
            if ref.namespace == namespace:
                self.queue.add((ALERTS, ref))

    # ----------------------------------------------------------------- the worker

    async def _handle(self, key: ObjectKey) -> None:
        resource, ref = key
        try:
            if resource == ALERTS:
                await self.alerts.reconcile(ref)
            elif resource == DESTINATIONS:
                await self.destinations.reconcile(ref)
            elif resource == RULES:
                await self.rules.reconcile(ref)
            elif resource == ORPHANS:
                await self.alerts.close_orphan(ref)
            elif resource == BLACKOUTS:
                await self.blackouts.reconcile(ref)
        except KubeError as exc:
            if exc.not_found:
                return
            self.metrics.reconcile_errors.labels(resource).inc()
            delay = 1.0 if exc.conflict else 5.0
            logger.info("%s %s: %s; retrying in %.0fs", resource, ref, exc, delay)
            self.queue.add_after(key, delay)
        except Exception:
            self.metrics.reconcile_errors.labels(resource).inc()
            logger.exception("%s %s: reconciliation failed; retrying in 30s", resource, ref)
            self.queue.add_after(key, 30.0)

    def delivery_counts(self) -> tuple[int, int]:
        """(pending, waiting) deliveries across all alerts; computed when Prometheus scrapes."""
        # Prometheus scrapes from its own thread: copy the entries in one C-level step (under the
        # GIL) rather than iterating a dict the event loop may be changing.
        alerts = [entry.model for entry in list(self.store.alerts.entries.values())]
        pending = sum(alert.pending_deliveries for alert in alerts)
        waiting = sum(alert.waiting_deliveries for alert in alerts)
        return pending, waiting
