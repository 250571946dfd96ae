"""The operator's service layer: keeps the store, runs the work queue, and carries out the pure decisions."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from incidentio_operator.api import (
    AlertRule,
    DataAlert,
    Destination,
    ObjectRef,
    format_time,
    parse_time,
    ready_conditions,
)
from incidentio_operator.api.alert import FINALIZER
from incidentio_operator.api.common import API_VERSION, condition_of, utcnow
from incidentio_operator.api.destination import TEST_REQUESTED_ANNOTATION
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.controller.store import Store
from incidentio_operator.controller.workqueue import WorkQueue
from incidentio_operator.decisions import delivery as lifecycle
from incidentio_operator.decisions.connection_test import TestResult, run_connection_test
from incidentio_operator.decisions.routing import route
from incidentio_operator.incidentio import (
    Account,
    ApiKey,
    EditIncidentRequest,
    Forbidden,
    IncidentIoClient,
    IncidentIoError,
    Unauthorized,
)
from incidentio_operator.kube.client import KubeClient, KubeError

logger = logging.getLogger("incidentio_operator.controller.manager")

ALERTS, DESTINATIONS, RULES = "dataalerts", "incidentiodestinations", "alertrules"
Key = tuple[str, ObjectRef]


@dataclass(frozen=True)
class Settings:
    concurrency: int = 32
    allow_cross_namespace: bool = False
    # Every object is looked at again this often, so nothing due is missed even if an event was.
    sweep_interval: float = 60.0
    delivery_retry_base: float = 5.0
    test_retry_base: float = 15.0
    # Rule and destination statuses summarise many alerts; batch their writes.
    summary_delay: float = 2.0
    # The namespaces the operator watches (kopf patterns); empty means the whole cluster.
    namespaces: tuple[str, ...] = ()


@dataclass
class DestinationState:
    """What the operator remembers about a destination between reconciliations (never persisted)."""

    api_key: ApiKey | None = None
    secret_version: str = ""
    force_test: bool = False
    # Set the moment a delivery call is refused with 401/403: no further call goes to the destination
    # until a connection test has run since, so a revoked key costs one refused call per worker at most.
    held: bool = False
    holds: int = 0
    test_failures: int = 0
    created: int = 0
    closed: int = 0
    failed: int = 0
    last_delivery: dict[str, Any] = field(default_factory=dict)


class Controller:
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
        self.clock = clock
        self.store = Store()
        self.queue: WorkQueue[Key] = WorkQueue()
        self._destinations: dict[ObjectRef, DestinationState] = {}
        self._rule_last_match: dict[ObjectRef, datetime.datetime] = {}
        # incident.io calls in flight per destination, and the alerts parked until one finishes: a
        # destination whose calls wait on its rate limit must not take every worker from the others.
        self._in_flight: dict[ObjectRef, int] = {}
        self._parked: dict[ObjectRef, dict[ObjectRef, None]] = {}
        # Rules waiting to count their alerts again, and since when (see _schedule_recount).
        self._recount_timers: dict[ObjectRef, asyncio.TimerHandle] = {}
        self._recount_since: dict[ObjectRef, float] = {}
        # Rules whose next reconciliation counts their alerts; any other keeps the count it has.
        self._recount_ready: set[ObjectRef] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        metrics.deliveries_pending.set_function(lambda: self.delivery_counts()[0])
        metrics.deliveries_waiting.set_function(lambda: self.delivery_counts()[1])
        metrics.queue_depth.set_function(lambda: self.queue.depth)

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load destinations and rules before any alert is looked at, then start the workers.

        Nothing is queued from this listing: work starts with kopf's watch events, which a
        standby replica paused by kopf's peering does not receive.
        """
        # Exact namespaces are listed one by one, so a namespace-scoped Role is enough; patterns
        # (or no namespaces: the whole cluster) need a cluster-wide list, as kopf's watches do.
        exact: list[str | None] = [ns for ns in self.settings.namespaces if not any(ch in ns for ch in "*?[!")]
        scopes: list[str | None] = exact if exact and len(exact) == len(self.settings.namespaces) else [None]
        for scope in scopes:
            try:
                for body in await self.kube.list(API_VERSION, DESTINATIONS, scope):
                    self.store.destinations.upsert(Destination.from_body(body), body, live=False)
                for body in await self.kube.list(API_VERSION, RULES, scope):
                    self.store.rules.upsert(AlertRule.from_body(body), body, live=False)
            except KubeError as exc:
                if not exc.not_found:
                    raise
                # The CRDs are not installed (yet): kopf starts watching when they appear.
                logger.warning("The alerting.armor.dev CRDs are not installed; waiting for them (%s)", exc)
        self._tasks = [
            asyncio.create_task(self.queue.run_worker(self._handle), name=f"worker-{n}")
            for n in range(self.settings.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._sweep(), name="sweep"))

    async def stop(self) -> None:
        self.queue.close()
        for timer in self._recount_timers.values():
            timer.cancel()
        self._recount_timers.clear()
        for task in [*self._tasks, *self._background]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._background, return_exceptions=True)
        self._tasks.clear()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            for destination in self.store.destinations.live():
                self.queue.add((DESTINATIONS, destination.ref))
            for alert in self.store.alerts.live():
                if alert.unsettled:
                    self.queue.add((ALERTS, alert.ref))

    # ----------------------------------------------------------------- events from kopf

    def observe(self, resource: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        ref = ObjectRef.of(body)
        deleted = event_type == "DELETED"
        if resource == ALERTS:
            # Most alert events are the echoes of our own status writes, already in the store:
            # skip them before parsing anything.
            version = str((body.get("metadata") or {}).get("resourceVersion") or "")
            if not deleted and self.store.alerts.known(ref, version):
                return
            previous = self.store.alerts.get(ref)
            if deleted:
                self.store.alerts.remove(ref)
            elif self.store.alerts.upsert(DataAlert.from_body(body), body):
                self.queue.add((ALERTS, ref))
            self._recount_rules(previous, self.store.alerts.get(ref))
        elif resource == DESTINATIONS:
            before = self.store.destinations.get(ref)
            if deleted:
                self.store.destinations.remove(ref)
                self._release(ref)
                self._destinations.pop(ref, None)
                self._destination_changed(ref, before, None)
            else:
                after = Destination.from_body(body)
                if self.store.destinations.upsert(after, body):
                    self.queue.add((DESTINATIONS, ref))
                    self._destination_changed(ref, before, after)
        elif resource == RULES:
            before_rule = self.store.rules.get(ref)
            if deleted:
                self.store.rules.remove(ref)
                self._recount_ready.discard(ref)
                self._recount_since.pop(ref, None)
                timer = self._recount_timers.pop(ref, None)
                if timer is not None:
                    timer.cancel()
                self._wake_alerts(ref.namespace, everything=True)
                return
            rule = AlertRule.from_body(body)
            if self.store.rules.upsert(rule, body):
                self.queue.add((RULES, ref))
                # Its alerts may still be arriving (a restart lists them after the rules): count once they have.
                self._schedule_recount(ref)
                if before_rule is None or before_rule.generation != rule.generation:
                    self._wake_alerts(ref.namespace, everything=True)
        elif resource == "secrets":
            for destination in self.store.destinations.in_namespace(ref.namespace):
                if destination.spec is not None and destination.spec.secret_name == ref.name:
                    self.queue.add((DESTINATIONS, destination.ref))

    def _destination_changed(self, ref: ObjectRef, before: Destination | None, after: Destination | None) -> None:
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
        for alert in self.store.alerts.in_namespace(namespace):
            if everything or alert.unsettled:
                self.queue.add((ALERTS, alert.ref))

    # ----------------------------------------------------------------- the worker

    async def _handle(self, key: Key) -> None:
        resource, ref = key
        try:
            if resource == ALERTS:
                await self._reconcile_alert(ref)
            elif resource == DESTINATIONS:
                await self._reconcile_destination(ref)
            elif resource == RULES:
                await self._reconcile_rule(ref)
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

    # ----------------------------------------------------------------- alerts

    async def _reconcile_alert(self, ref: ObjectRef) -> None:
        alert = self.store.alerts.get(ref)
        if alert is None:
            return
        routing = None
        if alert.spec is not None:
            routing = route(
                alert.spec,
                alert.ref,
                alert.labels,
                self.store.rules.in_namespace(ref.namespace),
                allow_cross_namespace=self.settings.allow_cross_namespace,
            )
            self._note_matches(alert, routing.matched_rules)
        destinations: dict[ObjectRef, Destination] = {}
        wanted = [r.destination for r in routing.routes] if routing else []
        for item in alert.status.get("deliveries") or ():
            wanted.append(lifecycle.destination_ref(str(item.get("destination") or ""), ref.namespace))
        for destination_ref in wanted:
            found = self.store.destinations.get(destination_ref)
            if found is not None:
                destinations[destination_ref] = found
        context = lifecycle.AlertContext(
            alert, routing, destinations, self.clock(), retry_base=self.settings.delivery_retry_base
        )
        plan = lifecycle.plan(context)
        if self._park(ref, plan):
            return
        finalizers = list(alert.finalizers)
        if plan.needs_finalizer and FINALIZER not in finalizers and not alert.deleting:
            finalizers.append(FINALIZER)
            alert = await self._write_alert(
                alert, {"metadata": {"finalizers": finalizers, "resourceVersion": alert.resource_version}}
            )
        # The write before the calls puts a create's idempotency key on record. A close needs no
        # such record (the incident ID already is one, and a repeated close is harmless), so a
        # plan that only closes goes straight to the calls: one write per resolve, not two.
        only_closes = bool(plan.actions) and all(isinstance(a, lifecycle.CloseIncident) for a in plan.actions)
        if _differs(plan.status, alert.status) and not only_closes:
            patch = {"metadata": {"resourceVersion": alert.resource_version}, "status": plan.status}
            alert = await self._write_alert(alert, patch, subresource="status")
        holds, requeue = any(d.holds_incident for d in plan.deliveries), plan.requeue_after
        if plan.actions:
            for action in plan.actions:
                self._in_flight[action.destination] = self._in_flight.get(action.destination, 0) + 1
            try:
                outcomes = await asyncio.gather(*(self._act(action, destinations) for action in plan.actions))
            finally:
                for action in plan.actions:
                    self._in_flight[action.destination] -= 1
                    self._wake_parked(action.destination)
            settled = lifecycle.settle(replace(context, alert=alert, now=self.clock()), plan, outcomes)
            alert = await self._write_alert(alert, {"status": settled.status}, subresource="status")
            holds, requeue = settled.holds_incidents, settled.requeue_after
            for event in settled.events:
                self._record_delivery(alert, event)
        for event in plan.events:
            self._record_delivery(alert, event)
        # The finalizer stays for the object's life once it has had an incident: removing it after
        # each resolve and adding it again on the next trigger would cost two writes per cycle.
        if alert.deleting and not holds and FINALIZER in alert.finalizers:
            remaining = [name for name in alert.finalizers if name != FINALIZER]
            await self._write_alert(
                alert, {"metadata": {"finalizers": remaining, "resourceVersion": alert.resource_version}}
            )
        if requeue is not None:
            jitter = random.uniform(0, min(requeue * 0.1, 2.0))
            self.queue.add_after((ALERTS, ref), requeue + jitter)

    @property
    def _slots(self) -> int:
        return max(4, self.settings.concurrency // 4)

    def _park(self, ref: ObjectRef, plan: lifecycle.Plan) -> bool:
        """Park the alert if a destination it must call is held, or has every call slot taken.

        Checked once, before the write that records the attempt: an alert past it makes its calls, so a
        hold costs at most the one call each worker already had under way.
        """
        for action in plan.actions:
            state = self._destinations.get(action.destination)
            held = state is not None and state.held
            if held or self._in_flight.get(action.destination, 0) >= self._slots:
                self._parked.setdefault(action.destination, {})[ref] = None
                return True
        return False

    def _hold(self, destination: ObjectRef) -> None:
        """Stop calls to a destination that refused the API key, and have its connection test say why."""
        state = self._state(destination)
        state.held, state.holds, state.force_test = True, state.holds + 1, True
        self.queue.add((DESTINATIONS, destination))

    def _release(self, destination: ObjectRef) -> None:
        """Lift a hold: every alert parked on the destination plans again against its new status."""
        state = self._destinations.get(destination)
        if state is not None:
            state.held = False
        for ref in self._parked.pop(destination, {}):
            self.queue.add((ALERTS, ref))

    def _wake_parked(self, destination: ObjectRef) -> None:
        """Queue as many parked alerts as the destination has free call slots.

        Waking by free slots rather than one per finished call means an alert that, once woken, has
        no call left to make (resolved meanwhile) cannot strand the ones parked behind it.
        """
        state = self._destinations.get(destination)
        if state is not None and state.held:
            return
        parked = self._parked.get(destination)
        free = self._slots - self._in_flight.get(destination, 0)
        while parked and free > 0:
            ref = next(iter(parked))
            del parked[ref]
            self.queue.add((ALERTS, ref))
            free -= 1

    async def _write_alert(
        self, alert: DataAlert, patch: Mapping[str, Any], *, subresource: str | None = None
    ) -> DataAlert:
        body = await self.kube.patch(
            API_VERSION, ALERTS, alert.ref.namespace, alert.ref.name, patch, subresource=subresource
        )
        updated = DataAlert.from_body(body)
        self.store.alerts.upsert(updated, body)
        self._recount_rules(alert, updated)
        return updated

    def _recount_rules(self, before: DataAlert | None, after: DataAlert | None) -> None:
        """Have each rule an alert started or stopped matching count its alerts again (batched).

        Besides new matches, this covers alerts deleted or re-routed, and a restart: the rule counts
        again once the alerts it lists have arrived, not only with whatever was loaded when it was first seen.
        """
        either = after or before
        if either is None:
            return
        old = set(before.matched_rules) if before is not None else set()
        new = set(after.matched_rules) if after is not None else set()
        for name in old ^ new:
            self._schedule_recount(ObjectRef(either.ref.namespace, name))

    def _schedule_recount(self, rule: ObjectRef) -> None:
        """Recount once alerts stop arriving for a moment (at most 10 summary delays late).

        A restart lists thousands of alerts over several seconds; counting at each summary delay would
        write every partial count in between. New matches still show at each delay (`_note_matches`).
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        first = self._recount_since.setdefault(rule, now)
        pending = self._recount_timers.pop(rule, None)
        if pending is not None:
            pending.cancel()
        delay = min(self.settings.summary_delay, max(0.0, first + 10 * self.settings.summary_delay - now))
        self._recount_timers[rule] = loop.call_later(delay, self._recount_now, rule)

    def _recount_now(self, rule: ObjectRef) -> None:
        self._recount_timers.pop(rule, None)
        self._recount_since.pop(rule, None)
        self._recount_ready.add(rule)
        self.queue.add((RULES, rule))

    async def _act(self, action: lifecycle.Action, destinations: Mapping[ObjectRef, Destination]) -> lifecycle.Outcome:
        destination = destinations[action.destination]
        try:
            account = await self._account(destination)
            if isinstance(action, lifecycle.OpenIncident):
                incident = await self.incidentio.create_incident(account, action.request)
                closed = False
                if action.then_close and destination.spec is not None and destination.spec.closed_status_id:
                    await self.incidentio.edit_incident(
                        account,
                        incident.id,
                        EditIncidentRequest(
                            incident_status_id=destination.spec.closed_status_id,
                            notify_incident_channel=destination.spec.incident.notify_incident_channel,
                        ),
                    )
                    closed = True
                return lifecycle.Outcome(action.label, action.epoch, incident=incident, closed=closed)
            await self.incidentio.edit_incident(account, action.incident_id, action.request)
            return lifecycle.Outcome(action.label, action.epoch, closed=True)
        except IncidentIoError as error:
            if isinstance(error, Unauthorized | Forbidden):
                self._hold(action.destination)
            return lifecycle.Outcome(action.label, action.epoch, error=error)

    def _note_matches(self, alert: DataAlert, matched: tuple[str, ...]) -> None:
        before = set(alert.matched_rules)
        for name in matched:
            if name not in before:
                rule_ref = ObjectRef(alert.ref.namespace, name)
                self._rule_last_match[rule_ref] = self.clock()
                self._recount_ready.add(rule_ref)
                self.queue.add_after((RULES, rule_ref), self.settings.summary_delay)

    def _record_delivery(self, alert: DataAlert, event: lifecycle.DeliveryEvent) -> None:
        state = self._state(event.destination)
        label = str(event.destination)
        if event.action == "Created":
            state.created += 1
            self.metrics.incidents_created.labels(label).inc()
        elif event.action == "Closed":
            state.closed += 1
            self.metrics.incidents_closed.labels(label).inc()
        elif event.action == "Failed":
            state.failed += 1
            self.metrics.deliveries_failed.labels(label).inc()
        state.last_delivery = {
            "time": format_time(self.clock()),
            "alert": str(alert.ref),
            "reference": event.reference,
            "action": event.action if event.action != "LeftOpen" else "Closed",
        }
        self.queue.add_after((DESTINATIONS, event.destination), self.settings.summary_delay)
        body = self.store.alerts.reference(alert.ref)
        if body is not None:
            event_type = "Warning" if event.action == "Failed" else "Normal"
            reason = {"Created": "IncidentCreated", "Closed": "IncidentClosed", "Failed": "DeliveryFailed"}.get(
                event.action, "IncidentLeftOpen"
            )
            self._post_event(body, event_type, reason, f"{event.message} ({label})")

    def delivery_counts(self) -> tuple[int, int]:
        """(pending, waiting) deliveries across all alerts; computed when Prometheus scrapes."""
        # Prometheus scrapes from its own thread: copy the entries in one C-level step (under the
        # GIL) rather than iterating a dict the event loop may be changing.
        alerts = [entry.model for entry in list(self.store.alerts.entries.values())]
        pending = sum(alert.pending_deliveries for alert in alerts)
        waiting = sum(alert.waiting_deliveries for alert in alerts)
        return pending, waiting

    # ----------------------------------------------------------------- destinations

    def _state(self, ref: ObjectRef) -> DestinationState:
        return self._destinations.setdefault(ref, DestinationState())

    async def _account(self, destination: Destination) -> Account:
        assert destination.spec is not None
        state = self._state(destination.ref)
        if state.api_key is None:
            secret = await self.kube.get("v1", "secrets", destination.ref.namespace, destination.spec.secret_name)
            state.api_key, state.secret_version = _api_key(secret, destination.spec.secret_key)
        if state.api_key is None:
            raise KubeError(404, "NoAPIKey", f"no API key in the Secret of {destination.ref}")
        return Account(destination.spec.base_url, state.api_key)

    async def _reconcile_destination(self, ref: ObjectRef) -> None:
        state = self._destinations.get(ref)  # not created here: the destination may be gone
        holds = state.holds if state is not None else 0
        try:
            await self._test_destination(ref)
        finally:
            # A hold set while this test ran waits for the test it queued, which sees the refusal.
            if state is not None and state.held and state.holds == holds:
                self._release(ref)

    async def _test_destination(self, ref: ObjectRef) -> None:
        destination = self.store.destinations.get(ref)
        if destination is None or destination.deleting:
            return
        state = self._state(ref)
        now = self.clock()
        status = dict(destination.status)
        summary = self._summary_fields(destination, state)
        if destination.spec is None:
            await self._write_destination(
                destination,
                {**summary, **self._conditions(destination, False, "InvalidSpec", str(destination.spec_error))},
            )
            return
        spec = destination.spec
        if spec.suspend:
            await self._write_destination(
                destination,
                {
                    **summary,
                    **self._conditions(
                        destination, False, "Suspended", "spec.suspend is true: no incidents are sent", settled=True
                    ),
                },
            )
            return
        secret = await self.kube.get("v1", "secrets", ref.namespace, spec.secret_name)
        api_key, secret_version = _api_key(secret, spec.secret_key)
        state.api_key, state.secret_version = api_key, secret_version
        if api_key is None:
            self.metrics.connection_tests.labels(str(ref), "NoAPIKey").inc()
            await self._write_destination(
                destination,
                {
                    **summary,
                    "secretVersion": secret_version,
                    **self._conditions(destination, False, "NoAPIKey", "No API key configured"),
                },
            )
            return
        last = status.get("lastTest") or {}
        requested = destination.annotations.get(TEST_REQUESTED_ANNOTATION, "")
        next_test = parse_time(str(status.get("nextTestAt") or ""))
        due = (
            state.force_test
            or status.get("observedGeneration") != destination.generation
            or status.get("secretVersion") != secret_version
            or requested != (last.get("requestedAt") or "")
            or condition_of(status, "Ready") is None
            or (condition_of(status, "Ready") or {}).get("reason") == "NoAPIKey"
            or next_test is None
            or next_test <= now
        )
        if not due:
            if _differs(summary, status):
                await self._write_destination(destination, summary)
            assert next_test is not None
            self.queue.add_after((DESTINATIONS, ref), (next_test - now).total_seconds())
            return
        state.force_test = False
        # The test incident goes out on creation, on a spec change and on request, not on every interval.
        create_test = spec.connection_test.on_create == "CreateTestIncident" and (
            not last
            or status.get("observedGeneration") != destination.generation
            or requested != (last.get("requestedAt") or "")
        )
        test_key = (
            "armor-test-"
            + hashlib.sha256(
                f"{destination.uid}|{destination.generation}|{requested}|{secret_version}".encode()
            ).hexdigest()[:32]
        )
        result = await run_connection_test(
            self.incidentio, Account(spec.base_url, api_key), spec, create_test_incident=create_test, test_key=test_key
        )
        self.metrics.connection_tests.labels(str(ref), result.reason).inc()
        if result.retryable:
            state.test_failures += 1
            delay = min(self.settings.test_retry_base * 2 ** (state.test_failures - 1), 600.0)
        else:
            state.test_failures = 0
            delay = spec.connection_test.interval.total_seconds()
        next_at = now + datetime.timedelta(seconds=delay)
        fields = {
            **summary,
            "secretVersion": secret_version,
            "lastTest": _last_test(result, now, spec.connection_test.on_create if create_test else "Verify", requested),
            "nextTestAt": format_time(next_at),
            "closedStatus": (
                {
                    "id": result.closed_status.id,
                    "name": result.closed_status.name,
                    "category": result.closed_status.category,
                }
                if result.closed_status
                else status.get("closedStatus") or {}
            ),
            "severityIds": dict(result.severity_ids) if result.ok else status.get("severityIds") or {},
            **self._conditions(destination, result.ok, result.reason, result.message, stalled=not result.retryable),
        }
        await self._write_destination(destination, fields)
        previous = (condition_of(status, "Ready") or {}).get("reason")
        if result.ok != (previous == "Verified") or create_test or result.retryable is False:
            self._post_event(
                self.store.destinations.reference(ref) or {},
                "Normal" if result.ok else "Warning",
                "ConnectionTestSucceeded" if result.ok else "ConnectionTestFailed",
                result.message,
            )
        self.queue.add_after((DESTINATIONS, ref), delay)

    def _conditions(
        self,
        destination: Destination,
        ready: bool,
        reason: str,
        message: str,
        *,
        stalled: bool = True,
        settled: bool = False,
    ) -> dict[str, Any]:
        return {
            "observedGeneration": destination.generation,
            "conditions": ready_conditions(
                ready=ready,
                reason=reason,
                message=message,
                generation=destination.generation,
                previous=destination.status.get("conditions") or (),
                progressing=not stalled,
                settled=settled,
                now=self.clock(),
            ),
        }

    def _summary_fields(self, destination: Destination, state: DestinationState) -> dict[str, Any]:
        """Counters accumulate in memory and are added to what the status already says."""
        counters = dict(destination.status.get("counters") or {})
        fields: dict[str, Any] = {}
        if state.created or state.closed or state.failed or not counters:
            fields["counters"] = {
                "incidentsCreated": int(counters.get("incidentsCreated") or 0) + state.created,
                "incidentsClosed": int(counters.get("incidentsClosed") or 0) + state.closed,
                "deliveriesFailed": int(counters.get("deliveriesFailed") or 0) + state.failed,
            }
        if state.last_delivery:
            fields["lastDelivery"] = state.last_delivery
        return fields

    async def _write_destination(self, destination: Destination, fields: Mapping[str, Any]) -> None:
        if not _differs(fields, destination.status):
            return
        state = self._state(destination.ref)
        body = await self.kube.patch(
            API_VERSION,
            DESTINATIONS,
            destination.ref.namespace,
            destination.ref.name,
            {"status": dict(fields)},
            subresource="status",
        )
        if "counters" in fields:
            # Deliveries recorded while this write was on its way count towards the next one.
            base, sent = destination.status.get("counters") or {}, fields["counters"]
            state.created -= int(sent["incidentsCreated"]) - int(base.get("incidentsCreated") or 0)
            state.closed -= int(sent["incidentsClosed"]) - int(base.get("incidentsClosed") or 0)
            state.failed -= int(sent["deliveriesFailed"]) - int(base.get("deliveriesFailed") or 0)
        state.last_delivery = {}
        before = self.store.destinations.get(destination.ref)
        after = Destination.from_body(body)
        if self.store.destinations.upsert(after, body):
            self._destination_changed(destination.ref, before, after)

    # ----------------------------------------------------------------- rules

    async def _reconcile_rule(self, ref: ObjectRef) -> None:
        rule = self.store.rules.get(ref)
        if rule is None:
            return
        # Counted only when asked to (alerts stopped arriving, or new matches): a rule seen at startup,
        # before the alerts are listed, keeps the count it has rather than write a partial one.
        previous = rule.status.get("matchedAlerts")
        if ref in self._recount_ready or not isinstance(previous, int):
            self._recount_ready.discard(ref)
            matched = sum(
                1
                for alert in self.store.alerts.in_namespace(ref.namespace)
                if ref.name in alert.matched_rules
            )
        else:
            matched = previous
        last_match = self._rule_last_match.get(ref)
        fields: dict[str, Any] = {"matchedAlerts": matched}
        if last_match is not None:
            fields["lastMatchedAt"] = format_time(last_match)
        entries: list[dict[str, Any]] = []
        if rule.spec is None:
            ready, reason, message = False, "InvalidSpec", str(rule.spec_error)
        else:
            problems: list[str] = []
            for reference in rule.spec.destinations:
                target = reference.resolve(ref.namespace)
                entry: dict[str, Any] = {"name": target.name, "namespace": target.namespace, "ready": False}
                destination = self.store.destinations.get(target)
                if target.namespace != ref.namespace and not self.settings.allow_cross_namespace:
                    entry.update(
                        reason="CrossNamespaceRefused",
                        message=(
                            "destinations in other namespaces are refused unless the operator runs with "
                            "--allow-cross-namespace"
                        ),
                    )
                elif destination is None:
                    entry.update(reason="NotFound", message=f"IncidentIoDestination {target} not found")
                elif not destination.ready:
                    entry.update(
                        reason="NotReady",
                        message=f"IncidentIoDestination {target} is not Ready ({destination.not_ready_reason})",
                    )
                else:
                    entry.update(ready=True, reason="Ready", message="")
                if not entry["ready"]:
                    problems.append(entry["message"])
                entries.append(entry)
            ready = not problems
            reason = "Ready" if ready else "DestinationNotReady"
            message = f"all {len(entries)} destination(s) Ready" if ready else "; ".join(problems)
        fields.update(
            destinations=entries,
            observedGeneration=rule.generation,
            conditions=ready_conditions(
                ready=ready,
                reason=reason,
                message=message,
                generation=rule.generation,
                previous=rule.status.get("conditions") or (),
                progressing=False,
                now=self.clock(),
            ),
        )
        if _differs(fields, rule.status):
            body = await self.kube.patch(
                API_VERSION, RULES, ref.namespace, ref.name, {"status": fields}, subresource="status"
            )
            self.store.rules.upsert(AlertRule.from_body(body), body)

    # ----------------------------------------------------------------- events

    def _post_event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        if not body:
            return
        task = asyncio.create_task(self._send_event(body, type_, reason, message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_event(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        try:
            await self.kube.post_event(body, type_=type_, reason=reason, message=message, now=self.clock())
        except KubeError as exc:
            logger.debug("event %s on %s not posted: %s", reason, ObjectRef.of(body), exc)


def _api_key(secret: Mapping[str, Any] | None, key: str) -> tuple[ApiKey | None, str]:
    """The API key from a Secret, and the Secret's resourceVersion (never the value)."""
    if secret is None:
        return None, ""
    version = str((secret.get("metadata") or {}).get("resourceVersion") or "")
    encoded = (secret.get("data") or {}).get(key)
    if not encoded:
        return None, version
    try:
        value = base64.b64decode(encoded).decode().strip()
    except (ValueError, UnicodeDecodeError):
        return None, version
    return (ApiKey(value) if value else None), version


def _last_test(result: TestResult, now: datetime.datetime, mode: str, requested: str) -> dict[str, Any]:
    test: dict[str, Any] = {
        "time": format_time(now),
        "result": "Succeeded" if result.ok else "Failed",
        "mode": mode,
        "message": result.message,
        "requestedAt": requested,
    }
    if result.identity_name:
        test["identityName"] = result.identity_name
        test["roles"] = list(result.roles)
    if result.incident_reference:
        test["incidentReference"] = result.incident_reference
    return test


def _differs(wanted: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    return any(current.get(key) != value for key, value in wanted.items())
