"""The IncidentIoDestination reconciler: its connection test, its Ready condition, its counters."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from incidentio_operator.api import (
    API_VERSION,
    DESTINATIONS,
    Destination,
    ObjectRef,
    differs,
    format_time,
    parse_time,
    ready_conditions,
)
from incidentio_operator.api.common import condition_of
from incidentio_operator.api.destination import DESTINATION_FINALIZER, TEST_REQUESTED_ANNOTATION
from incidentio_operator.controller.alertsource_test import TestSetup, alert_events_setup
from incidentio_operator.controller.connection_test import run_connection_test
from incidentio_operator.controller.credentials import Credentials
from incidentio_operator.controller.gate import CallGate
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.controller.recorder import EventRecorder
from incidentio_operator.controller.settings import Settings
from incidentio_operator.controller.store import Store
from incidentio_operator.controller.tally import DeliveryTally
from incidentio_operator.controller.tokens import AlertSourceTokens
from incidentio_operator.controller.workqueue import ObjectKey, WorkQueue
from incidentio_operator.decisions.connection_test import TestResult
from incidentio_operator.decisions.delivery import destination_ref
from incidentio_operator.incidentio import Account, IncidentIoClient
from incidentio_operator.kube import KubeClient

# Told when a destination's stored status changed (before, after): rules and waiting alerts depend on it.
StatusChanged = Callable[[ObjectRef, Destination | None, Destination | None], None]


class DestinationReconciler:
    """Tests each destination's account when due and writes what it found; lifts holds once tested."""

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
        status_changed: StatusChanged,
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
        self._status_changed = status_changed
        self._test_failures: dict[ObjectRef, int] = {}
        self._finalizer_locks: dict[ObjectRef, asyncio.Lock] = {}

    async def reconcile(self, ref: ObjectRef) -> None:
        holds = self._gate.holds(ref)
        try:
            await self._test(ref)
        finally:
            # A hold set while this test ran waits for the test it queued, which sees the refusal.
            if self._gate.held(ref) and self._gate.holds(ref) == holds:
                self._gate.release(ref)

    def forget(self, ref: ObjectRef) -> None:
        """The destination is gone: keep no state for it."""
        self._test_failures.pop(ref, None)
        self._finalizer_locks.pop(ref, None)
        self._credentials.forget(ref)
        self._tokens.forget(ref)
        self._tally.forget(ref)

    async def _test(self, ref: ObjectRef) -> None:
        destination = self._store.destinations.get(ref)
        if destination is None:
            return
        if DESTINATION_FINALIZER in destination.finalizers or destination.deleting:
            holders = self.holders(destination)
            if destination.deleting:
                await self._while_deleting(destination, holders)
                return
            if not holders:
                destination = await self._set_finalizer(destination, present=False)
        summary = self._tally.status_fields(ref, destination.status)
        if destination.spec is None:
            conditions = self._conditions(destination, False, "InvalidSpec", str(destination.spec_error))
            await self._write(destination, {**summary, **conditions})
            return
        if destination.spec.suspend:
            message = "spec.suspend is true: no incidents are sent"
            conditions = self._conditions(destination, False, "Suspended", message, settled=True)
            await self._write(destination, {**summary, **conditions})
            return
        setup = await self._setup(destination)
        if setup.run is None:
            self._metrics.connection_tests.labels(str(ref), setup.reason).inc()
            conditions = self._conditions(destination, False, setup.reason, setup.message)
            changed = differs({"secretVersion": setup.secret_version, **conditions}, destination.status)
            await self._write(destination, {**summary, "secretVersion": setup.secret_version, **conditions})
            if setup.warn and (changed or destination.ready_reason != setup.reason):
                involved = self._store.destinations.reference(ref) or {}
                self._recorder.post(involved, "Warning", setup.reason, setup.message)
            self._requeue(ref, self._settings.secret_poll_interval)
            return
        now = self._clock()
        next_test = parse_time(str(destination.status.get("nextTestAt") or ""))
        if not self._due(destination, setup.secret_version, next_test, now):
            if differs(summary, destination.status):
                await self._write(destination, summary)
            assert next_test is not None
            self._requeue(ref, (next_test - now).total_seconds())
            return
        await self._run_test(destination, setup, summary)

    async def _setup(self, destination: Destination) -> TestSetup:
        """The connection test to run, with the API key (mode Incident) or the alert source token (AlertEvent)."""
        spec = destination.spec
        assert spec is not None
        if spec.alert_events:
            return await alert_events_setup(self._incidentio, self._credentials, self._tokens, destination)
        read = await self._credentials.read(destination)
        if read.api_key is None:
            reason, message = ("InvalidAPIKey", read.problem) if read.problem else ("NoAPIKey", "No API key configured")
            return TestSetup(read.secret_version, reason=reason, message=message, warn=bool(read.problem))
        account = Account(spec.base_url, read.api_key)

        async def run(create_test: bool, test_key: str) -> TestResult:
            return await run_connection_test(
                self._incidentio, account, spec, create_test_incident=create_test, test_key=test_key
            )

        return TestSetup(read.secret_version, run, status={"deliveryMode": spec.delivery_mode})

    def holders(self, destination: Destination) -> list[ObjectRef]:
        """The alerts that hold an incident that may be open through this destination."""
        ref = destination.ref
        anywhere = self._settings.allow_cross_namespace
        found = []
        for entry in self._store.alerts.holding_entries():
            alert = entry.model
            if not anywhere and alert.ref.namespace != ref.namespace:
                continue
            if any(destination_ref(label, alert.ref.namespace) == ref for label in alert.holding):
                found.append(alert.ref)
        return sorted(found)

    async def ensure_finalizer(self, ref: ObjectRef) -> None:
        """Before an incident is opened through the destination: it may not go while the incident is open.

        The first alerts of a burst all find the finalizer missing; one writes it while the others wait
        and then find it in the store, instead of each writing and all but one failing with a conflict
        (each such alert was retried a second later).
        """
        destination = self._store.destinations.get(ref)
        if destination is None or DESTINATION_FINALIZER in destination.finalizers:
            return
        async with self._finalizer_locks.setdefault(ref, asyncio.Lock()):
            destination = self._store.destinations.get(ref)
            if destination is not None and DESTINATION_FINALIZER not in destination.finalizers:
                await self._set_finalizer(destination, present=True)

    async def _set_finalizer(self, destination: Destination, *, present: bool) -> Destination:
        others = [name for name in destination.finalizers if name != DESTINATION_FINALIZER]
        finalizers = [*others, DESTINATION_FINALIZER] if present else others
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": destination.resource_version}}
        ref = destination.ref
        body = await self._kube.patch(API_VERSION, DESTINATIONS, ref.namespace, ref.name, patch)
        after = Destination.from_body(body)
        self._store.destinations.upsert(after, body)
        return after

    async def _while_deleting(self, destination: Destination, holders: list[ObjectRef]) -> None:
        """Let the destination go once no alert holds an incident through it; until then say which do."""
        if DESTINATION_FINALIZER not in destination.finalizers:
            return
        if not holders:
            await self._set_finalizer(destination, present=False)
            return
        shown = ", ".join(str(ref) for ref in holders[:5]) + (
            f" and {len(holders) - 5} more" if len(holders) > 5 else ""
        )
        message = (
            f"being deleted: waiting for {len(holders)} alert(s) holding open incidents through it to close them "
            f"({shown}); to give up on them, see the README's Uninstall section"
        )
        conditions = self._conditions(destination, False, "Deleting", message, stalled=False)
        await self._write(destination, conditions)
        self._queue.add_after((DESTINATIONS, destination.ref), self._settings.secret_poll_interval)

    def _due(
        self,
        destination: Destination,
        secret_version: str,
        next_test: datetime.datetime | None,
        now: datetime.datetime,
    ) -> bool:
        """A test is due after a hold, a spec or key change, on request, without a result yet, or on its interval."""
        status = destination.status
        ready = condition_of(status, "Ready")
        return (
            self._gate.take_test_request(destination.ref)
            or status.get("observedGeneration") != destination.generation
            or status.get("secretVersion") != secret_version
            or _requested(destination) != ((status.get("lastTest") or {}).get("requestedAt") or "")
            or ready is None
            or ready.get("reason") in ("NoAPIKey", "NoAlertSourceToken")
            or next_test is None
            or next_test <= now
        )

    async def _run_test(self, destination: Destination, setup: TestSetup, summary: Mapping[str, Any]) -> None:
        assert destination.spec is not None and setup.run is not None
        secret_version = setup.secret_version
        spec, ref, status, now = destination.spec, destination.ref, destination.status, self._clock()
        last, requested = status.get("lastTest") or {}, _requested(destination)
        # The test incident goes out on creation, on a spec change and on request, not on every interval.
        create_test = spec.connection_test.on_create == "CreateTestIncident" and (
            not last
            or status.get("observedGeneration") != destination.generation
            or requested != (last.get("requestedAt") or "")
        )
        seed = f"{destination.uid}|{destination.generation}|{requested}|{secret_version}"
        test_key = "armor-test-" + hashlib.sha256(seed.encode()).hexdigest()[:32]
        result = await setup.run(create_test, test_key)
        self._metrics.connection_tests.labels(str(ref), result.reason).inc()
        delay = self._retry_delay(ref, result, spec.connection_test.interval.total_seconds())
        fields = {
            **summary,
            "secretVersion": secret_version,
            "lastTest": {
                **_last_test(result, now, spec.connection_test.on_create if create_test else "Verify", requested),
                **setup.last_test,
            },
            "nextTestAt": format_time(now + datetime.timedelta(seconds=delay)),
            **setup.status,
            "closedStatus": _closed_status(result, status),
            "severityIds": dict(result.severity_ids) if result.ok else status.get("severityIds") or {},
            "customFieldIds": _replacing(status.get("customFieldIds"), result.custom_field_ids) if result.ok else {},
            **self._conditions(destination, result.ok, result.reason, result.message, stalled=not result.retryable),
        }
        await self._write(destination, fields)
        previous = (condition_of(status, "Ready") or {}).get("reason")
        if result.ok != (previous == "Verified") or create_test or result.retryable is False:
            self._recorder.post(
                self._store.destinations.reference(ref) or {},
                "Normal" if result.ok else "Warning",
                "ConnectionTestSucceeded" if result.ok else "ConnectionTestFailed",
                result.message,
            )
        self._requeue(ref, delay)

    def _requeue(self, ref: ObjectRef, seconds: float) -> None:
        """Look again when the next test is due, and before that when the Secret is due for a re-read."""
        self._queue.add_after((DESTINATIONS, ref), min(seconds, self._settings.secret_poll_interval))

    def _retry_delay(self, ref: ObjectRef, result: TestResult, interval: float) -> float:
        """Seconds to the next test: the interval, or after a retryable failure a doubling backoff (<= 10 min)."""
        if not result.retryable:
            self._test_failures.pop(ref, None)
            return interval
        failures = self._test_failures[ref] = self._test_failures.get(ref, 0) + 1
        return float(min(self._settings.test_retry_base * 2 ** (failures - 1), 600.0))

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
                now=self._clock(),
            ),
        }

    async def _write(self, destination: Destination, fields: Mapping[str, Any]) -> None:
        if not differs(fields, destination.status):
            return
        ref = destination.ref
        body = await self._kube.patch(
            API_VERSION, DESTINATIONS, ref.namespace, ref.name, {"status": dict(fields)}, subresource="status"
        )
        self._tally.written(ref, destination.status, fields)
        before = self._store.destinations.get(ref)
        after = Destination.from_body(body)
        if self._store.destinations.upsert(after, body):
            self._status_changed(ref, before, after)


def _replacing(old: Any, new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch (RFC 7386) turning ``old`` into ``new``: what ``old`` has and ``new`` lacks is nulled, so
    a field or option gone from incident.io is gone from the status too (a plain merge would keep it)."""
    patch: dict[str, Any] = {key: None for key in (old if isinstance(old, Mapping) else {}) if key not in new}
    for key, value in new.items():
        before = old.get(key) if isinstance(old, Mapping) else None
        patch[key] = _replacing(before, value) if isinstance(value, Mapping) else value
    return patch


def _requested(destination: Destination) -> str:
    return destination.annotations.get(TEST_REQUESTED_ANNOTATION, "")


def _closed_status(result: TestResult, status: Mapping[str, Any]) -> Any:
    if result.closed_status is None:
        return status.get("closedStatus") or {}
    closed = result.closed_status
    return {"id": closed.id, "name": closed.name, "category": closed.category}


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
