"""The DataAlert reconciler: route, plan, record the attempt, call incident.io, settle, write the outcome."""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from incidentio_operator.api import (
    ALERTS,
    API_VERSION,
    DESTINATIONS,
    DataAlert,
    Destination,
    ObjectRef,
    differs,
    format_time,
)
from incidentio_operator.api.alert import FINALIZER, OWNER_LABEL
from incidentio_operator.controller.credentials import Credentials
from incidentio_operator.controller.destinations import DestinationReconciler
from incidentio_operator.controller.gate import CallGate
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.controller.noise import NoiseControl
from incidentio_operator.controller.recorder import EventRecorder
from incidentio_operator.controller.retention import Retention
from incidentio_operator.controller.rules import RuleReconciler
from incidentio_operator.controller.settings import Settings
from incidentio_operator.controller.store import Store
from incidentio_operator.controller.tally import DeliveryTally
from incidentio_operator.controller.tokens import AlertSourceTokens
from incidentio_operator.controller.workqueue import ObjectKey, WorkQueue
from incidentio_operator.decisions import delivery as lifecycle
from incidentio_operator.decisions.delivery.model import earliest
from incidentio_operator.decisions.delivery.retention import at_rest, seconds_until_deletion
from incidentio_operator.decisions.routing import route
from incidentio_operator.incidentio import (
    Account,
    Forbidden,
    Incident,
    IncidentIoClient,
    IncidentIoError,
    NotFound,
    Priority,
    Unauthorized,
)
from incidentio_operator.kube import KubeClient

logger = logging.getLogger("incidentio_operator.controller.alerts")
# Work queue keys of alerts that are gone but hold incidents to close (see AlertReconciler.orphaned).
ORPHANS = "orphaned-dataalerts"
EVENT_REASONS = {
    "Created": "IncidentCreated",
    "Closed": "IncidentClosed",
    "Ended": "IncidentEndedInIncidentIo",
    "Failed": "DeliveryFailed",
    "Updated": "IncidentUpdated",
    "UpdateFailed": "IncidentUpdateFailed",
    "Firing": "AlertFiring",
    "Resolved": "AlertResolved",
}
BACKGROUND, FOREGROUND = Priority.BACKGROUND, Priority.FOREGROUND


class AlertReconciler:
    """Carries out the delivery lifecycle's decisions for one alert at a time (the work queue sees to that)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        queue: WorkQueue[ObjectKey],
        kube: KubeClient,
        incidentio: IncidentIoClient,
        metrics: Metrics,
        clock: Callable[[], datetime.datetime],
        *,
        gate: CallGate,
        credentials: Credentials,
        tokens: AlertSourceTokens,
        recorder: EventRecorder,
        tally: DeliveryTally,
        rules: RuleReconciler,
        destinations: DestinationReconciler,
        noise: NoiseControl,
    ) -> None:
        self._settings = settings
        self._store = store
        self._queue = queue
        self._kube = kube
        self._incidentio = incidentio
        self._metrics = metrics
        self._clock = clock
        self._gate = gate
        self._credentials = credentials
        self._tokens = tokens
        self._recorder = recorder
        self._tally = tally
        self._rules = rules
        self._destinations = destinations
        self._orphans: dict[ObjectRef, DataAlert] = {}
        # Incidents found over in incident.io and not yet recorded, per alert: (label, epoch) -> how.
        self._ended: dict[ObjectRef, dict[tuple[str, int], str]] = {}
        self._noise = noise
        self._retention = Retention(kube, metrics, clock)

    async def reconcile(self, ref: ObjectRef) -> None:
        alert = self._store.alerts.get(ref)
        if alert is None:
            return
        context = self._context(alert)
        plan = lifecycle.plan(context)
        # Before any await: another worker's plan must see this one's admissions (cooldowns, daily caps).
        self._noise.planned(alert, plan)
        for action in plan.actions:
            # A key that went away or cannot be sent (after a rotation) holds the destination: its
            # connection test says why, and the alert waits for it like for any destination not Ready.
            destination = context.destinations[action.destination]
            if not await self._usable(destination, action):
                self._gate.hold(action.destination)
        if self._gate.park(ref, (action.destination for action in plan.actions)):
            return
        opening = (lifecycle.OpenIncident, lifecycle.SendAlertEvent)
        for destination_ref in {a.destination for a in plan.actions if isinstance(a, opening)}:
            await self._destinations.ensure_finalizer(destination_ref)
        owner = self._settings.owner
        if plan.needs_finalizer and FINALIZER not in alert.finalizers and not alert.deleting:
            finalizers = [*alert.finalizers, FINALIZER]
            metadata = {"finalizers": finalizers, "labels": {OWNER_LABEL: owner}}
            alert = await self._write(alert, {"metadata": {**metadata, "resourceVersion": alert.resource_version}})
        elif alert.holding and alert.labels.get(OWNER_LABEL) != owner and self._settings.in_shard(alert.labels):
            # Its labels moved it into this replica's shard: take over the incidents another replica opened.
            metadata = {"labels": {OWNER_LABEL: owner}, "resourceVersion": alert.resource_version}
            alert = await self._write(alert, {"metadata": metadata})
        # The write before the calls puts a create's idempotency key on record. A close needs no
        # such record (the incident ID already is one, and a repeated close is harmless), so a
        # plan that only closes goes straight to the calls: one write per resolve, not two.
        only_closes = bool(plan.actions) and all(isinstance(a, lifecycle.CloseIncident) for a in plan.actions)
        if differs(plan.status, alert.status) and not only_closes:
            patch = {"metadata": {"resourceVersion": alert.resource_version}, "status": plan.status}
            alert = await self._write(alert, patch, subresource="status")
        holds, requeue = any(d.holds_incident for d in plan.deliveries), plan.requeue_after
        if plan.actions:
            with self._gate.calling(action.destination for action in plan.actions):
                outcomes = await asyncio.gather(*(self._act(action, context.destinations) for action in plan.actions))
            settled = lifecycle.settle(replace(context, alert=alert, now=self._clock()), plan, outcomes)
            alert = await self._write(alert, {"status": settled.status}, subresource="status")
            holds, requeue = settled.holds_incidents, settled.requeue_after
            for event in settled.events:
                self._record(alert, event)
        for event in plan.events:
            self._record(alert, event)
        # The finalizer is held only while an incident may still have to be closed: an alert whose
        # incidents are closed (or left open by design) never holds up a namespace's or CRD's deletion,
        # even with the operator gone.
        if not holds and FINALIZER in alert.finalizers:
            remaining = [name for name in alert.finalizers if name != FINALIZER]
            metadata = {"finalizers": remaining, "labels": {OWNER_LABEL: None}}
            alert = await self._write(alert, {"metadata": {**metadata, "resourceVersion": alert.resource_version}})
        self._forget_recorded_ends(ref, context.ended)
        requeue = earliest(requeue, await self._retention.expire(alert))
        if requeue is not None:
            jitter = random.uniform(0, min(requeue * 0.1, 2.0))
            self._queue.add_after((ALERTS, ref), requeue + jitter)

    def observed(self, alert: DataAlert | None, *, listed: bool) -> None:
        """A new version of the alert is stored: queue it, unless a full list handed it over at rest.

        An alert at rest (decisions/delivery/retention.py ``at_rest``) is one no look could act on now, whatever
        changed while the operator was away, so a restart over 50,000 of them plans none: only a deletion
        its retention has set is scheduled. Any later change of it, or of its rules, queues it as usual.
        """
        if alert is None:
            return
        if not (listed and at_rest(alert, self._settings.settled_alert_ttl)):
            self._queue.add((ALERTS, alert.ref))
            return
        seconds = seconds_until_deletion(alert, self._clock())
        if seconds is not None:
            self._queue.add_after((ALERTS, alert.ref), max(0.0, seconds))

    def _context(self, alert: DataAlert) -> lifecycle.AlertContext:
        """The alert with its routes and every destination it has or had a delivery for."""
        routing = None
        if alert.spec is not None:
            rules = self._store.rules.in_namespace(alert.ref.namespace)
            cross = self._settings.allow_cross_namespace
            routing = route(alert.spec, alert.ref, alert.labels, rules, allow_cross_namespace=cross)
            self._rules.note_matches(alert, routing.matched_rules)
        wanted = [r.destination for r in routing.routes] if routing else []
        for item in alert.status.get("deliveries") or ():
            wanted.append(lifecycle.destination_ref(str(item.get("destination") or ""), alert.ref.namespace))
        destinations: dict[ObjectRef, Destination] = {}
        for destination_ref in wanted:
            found = self._store.destinations.get(destination_ref)
            if found is not None:
                destinations[destination_ref] = found
        return lifecycle.AlertContext(
            alert,
            routing,
            destinations,
            self._clock(),
            retry_base=self._settings.delivery_retry_base,
            noise=self._noise.facts(alert.ref.namespace),
            keys_held=frozenset(ref for ref in destinations if self._credentials.held(ref) or self._tokens.held(ref)),
            ended=self._ended.get(alert.ref, {}),
            outside_shard=self._outside_shard(alert),
            update_timing=lifecycle.UpdateTiming(self._settings.update_quiet, self._settings.update_longest),
            settled_ttl=self._settings.settled_alert_ttl,
        )

    def _outside_shard(self, alert: DataAlert) -> str:
        if self._settings.in_shard(alert.labels):
            return ""
        shard = ", ".join(f"{key}={value}" for key, value in self._settings.shard_labels)
        return (
            f"its labels no longer put it in this operator's shard ({shard}): the operator that opened its "
            "incidents closes them when it resolves or is deleted, and opens no new one"
        )

    async def _write(self, alert: DataAlert, patch: Mapping[str, Any], *, subresource: str | None = None) -> DataAlert:
        body = await self._kube.patch(
            API_VERSION, ALERTS, alert.ref.namespace, alert.ref.name, patch, subresource=subresource
        )
        updated = DataAlert.from_body(body, before=alert)
        self._store.alerts.upsert(updated, body)
        self._rules.alert_changed(alert, updated)
        self._noise.alert_changed(updated)
        return updated

    async def _act(self, action: lifecycle.Action, destinations: Mapping[ObjectRef, Destination]) -> lifecycle.Outcome:
        destination = destinations[action.destination]
        try:
            if isinstance(action, lifecycle.SendAlertEvent):
                return await self._send_alert_event(action, destination)
            account = await self._credentials.account(destination, closing=lifecycle.closes(action))
            if isinstance(action, lifecycle.CloseIncident | lifecycle.UpdateIncident):
                update = action if isinstance(action, lifecycle.UpdateIncident) else None
                # Keeping an open incident current waits behind this key's creates and closes (Priority).
                priority = BACKGROUND if update else FOREGROUND
                try:
                    await self._incidentio.edit_incident(account, action.incident_id, action.request, priority=priority)
                except IncidentIoError as error:
                    how = await self._ended_instead(account, action.incident_id, destination, error)
                    if not how:
                        raise
                    return lifecycle.Outcome(action.label, action.epoch, ended=how)
                return lifecycle.Outcome(action.label, action.epoch, closed=update is None, update=update)
            incident = await self._incidentio.create_incident(account, action.request)
            closed = False
            if action.then_close and destination.spec is not None and destination.spec.closed_status_id:
                await self._incidentio.edit_incident(account, incident.id, lifecycle.close_request(destination))
                closed = True
            return lifecycle.Outcome(action.label, action.epoch, incident=incident, closed=closed)
        except IncidentIoError as error:
            if isinstance(error, Unauthorized | Forbidden):
                self._gate.hold(action.destination)
            update = action if isinstance(action, lifecycle.UpdateIncident) else None
            return lifecycle.Outcome(action.label, action.epoch, error=error, update=update)

    async def _usable(self, destination: Destination, action: lifecycle.Action) -> bool:
        """The action's credential is in hand: the alert source token for an alert event, else the API key."""
        if isinstance(action, lifecycle.SendAlertEvent):
            return await self._tokens.usable(destination, closing=lifecycle.closes(action))
        return await self._credentials.usable(destination, closing=lifecycle.closes(action))

    async def _send_alert_event(self, action: lifecycle.SendAlertEvent, destination: Destination) -> lifecycle.Outcome:
        """Mode AlertEvent: the event to the destination's alert source; a refused token is remembered as such."""
        source = await self._tokens.source(destination, closing=lifecycle.closes(action))
        try:
            await self._incidentio.create_alert_event(source, action.event)
        except (Unauthorized, Forbidden):
            self._tokens.refuse(destination.ref)
            raise
        return lifecycle.Outcome(action.label, action.epoch, event_status=action.event.status)

    async def _ended_instead(
        self, account: Account, incident_id: str, destination: Destination, error: IncidentIoError
    ) -> str:
        """After a refused close (404, or a 4xx such as incident.io's lifecycle rules): read the incident, and
        say how it ended if a responder already ended it there ('' when it is not over: the refusal stands)."""
        if error.retryable or isinstance(error, Unauthorized | Forbidden) or error.status is None:
            return ""
        assert destination.spec is not None
        try:
            incident: Incident | None = await self._incidentio.get_incident(account, incident_id)
        except NotFound:
            incident = None
        except IncidentIoError:
            return ""
        return lifecycle.how_it_ended(incident, destination.spec.closed_status_id)

    def _forget_recorded_ends(self, ref: ObjectRef, recorded: Mapping[tuple[str, int], str]) -> None:
        """The status written holds these ends now; keep only those found since the plan was made."""
        pending = self._ended.get(ref)
        if not pending or not recorded:
            return
        for key in recorded:
            pending.pop(key, None)
        if not pending:
            del self._ended[ref]

    def incident_ended(self, ref: ObjectRef, label: str, epoch: int, how: str) -> None:
        """A read found the alert's incident over in incident.io: record it on the delivery."""
        self._ended.setdefault(ref, {})[(label, epoch)] = how
        self._queue.add((ALERTS, ref))

    # ----------------------------------------------------------------- alerts gone without their finalizer

    def orphaned(self, alert: DataAlert) -> None:
        """An alert that went away holding incidents, its finalizer never run: close them from its last status.

        This happens when an alert is replaced without its finalizers (``kubectl replace``, a GitOps replace
        sync) and deleted before the operator put the finalizer back, or is deleted while the operator's
        watch was down and a relist no longer shows it. There is no object left to hold an Event, so each
        close is logged and counted (``incidentio_operator_orphan_closes_total``). Kept in memory only.
        """
        if not alert.holding:
            return
        logger.warning(
            "dataalert %s went away holding incidents in %s without its finalizer running; closing them",
            alert.ref,
            ", ".join(alert.holding),
        )
        self._orphans[alert.ref] = replace(alert, deleting=True)
        self._queue.add((ORPHANS, alert.ref))

    async def close_orphan(self, ref: ObjectRef) -> None:
        """One round of closes for an alert that is gone (see ``orphaned``)."""
        orphan = self._orphans.get(ref)
        if orphan is None:
            return
        destinations = {
            found.ref: found
            for label in orphan.holding
            if (found := self._store.destinations.get(lifecycle.destination_ref(label, ref.namespace))) is not None
        }
        keys_held = frozenset(d for d in destinations if self._credentials.held(d))
        context = lifecycle.AlertContext(orphan, None, destinations, self._clock(), keys_held=keys_held)
        plan = lifecycle.plan(context)
        if any(self._gate.held(action.destination) for action in plan.actions):
            self._queue.add_after((ORPHANS, ref), self._settings.delivery_retry_base)
            return
        with self._gate.calling(action.destination for action in plan.actions):
            outcomes = await asyncio.gather(*(self._act(action, destinations) for action in plan.actions))
        settled = lifecycle.settle(replace(context, now=self._clock()), plan, outcomes)
        orphan = orphan.with_status(settled.status)
        for event in (*plan.events, *settled.events):
            self._record(orphan, event, post_event=False)
            self._metrics.orphan_closes.labels(str(event.destination), event.action).inc()
            logger.warning("dataalert %s (gone): %s (%s)", ref, event.message, event.destination)
        if not orphan.holding:
            del self._orphans[ref]
            return
        self._orphans[ref] = orphan
        self._queue.add_after((ORPHANS, ref), settled.requeue_after or self._settings.delivery_retry_base)

    def _record(self, alert: DataAlert, event: lifecycle.DeliveryEvent, *, post_event: bool = True) -> None:
        """Count the delivery for its destination and in the metrics, and post an Event on the alert."""
        if event.verdict is not None:
            self._noise.held(alert, event)  # held back: no incident, nothing for the destination to count
            return
        label = str(event.destination)
        if event.action in ("Updated", "UpdateFailed"):
            self._update_recorded(alert, event, post_event=post_event)
            return
        if event.action == "Created":
            self._metrics.incidents_created.labels(label).inc()
        elif event.action == "Closed":
            self._metrics.incidents_closed.labels(label).inc()
        elif event.action == "Failed":
            self._metrics.deliveries_failed.labels(label).inc()
        elif event.action in ("Firing", "Resolved"):
            self._metrics.alert_events.labels(label, event.action.lower()).inc()
        last_delivery = {
            "time": format_time(self._clock()),
            "alert": str(alert.ref),
            "reference": event.reference,
            "action": event.action if event.action != "LeftOpen" else "Closed",
        }
        self._tally.record(event.destination, event.action, last_delivery)
        self._queue.add_after((DESTINATIONS, event.destination), self._settings.summary_delay)
        involved = self._store.alerts.reference(alert.ref)
        if involved is not None and post_event:
            kind = "Warning" if event.action == "Failed" else "Normal"
            reason = EVENT_REASONS.get(event.action, "IncidentLeftOpen")
            self._recorder.post(involved, kind, reason, f"{event.message} ({label})")

    def _update_recorded(self, alert: DataAlert, event: lifecycle.DeliveryEvent, *, post_event: bool) -> None:
        """An edit of an open incident: counted by outcome, and an Event on the alert (not a delivery of its own)."""
        self._metrics.incident_updates.labels(str(event.destination), event.action).inc()
        involved = self._store.alerts.reference(alert.ref)
        if involved is not None and post_event:
            kind = "Warning" if event.action == "UpdateFailed" else "Normal"
            self._recorder.post(involved, kind, EVENT_REASONS[event.action], f"{event.message} ({event.destination})")
