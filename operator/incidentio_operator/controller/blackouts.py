"""The AlertBlackout reconciler: active now or not, its next window, the rules it holds, how much it held back."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from incidentio_operator.api import (
    API_VERSION,
    BLACKOUTS,
    AlertBlackout,
    ObjectRef,
    differs,
    format_time,
    ready_conditions,
)
from incidentio_operator.controller.noise import NoiseControl
from incidentio_operator.controller.store import Store
from incidentio_operator.controller.workqueue import ObjectKey, WorkQueue
from incidentio_operator.decisions.routing import selector_matches
from incidentio_operator.decisions.suppression import Span, blackout_spans, next_span, open_span
from incidentio_operator.kube import KubeClient

# A status is refreshed at least this often, so a window far ahead is still checked against the clock.
MAX_REQUEUE_SECONDS = 6 * 3600.0


def _window(span: Span | None) -> dict[str, str] | None:
    return {"start": format_time(span.start), "end": format_time(span.end)} if span else None


class BlackoutReconciler:
    """Writes each blackout's status, and looks again when a window opens or closes."""

    def __init__(
        self,
        store: Store,
        queue: WorkQueue[ObjectKey],
        kube: KubeClient,
        clock: Callable[[], datetime.datetime],
        *,
        noise: NoiseControl,
    ) -> None:
        self._store = store
        self._queue = queue
        self._kube = kube
        self._clock = clock
        self._noise = noise

    async def reconcile(self, ref: ObjectRef) -> None:
        blackout = self._store.blackouts.get(ref)
        if blackout is None:
            return
        now = self._clock()
        fields, next_change = self._fields(blackout, now)
        suppressed = self._noise.blackout_suppressed(ref, blackout.status)
        fields.update(suppressedAlerts=suppressed, observedGeneration=blackout.generation)
        fields["conditions"] = ready_conditions(
            ready=blackout.spec is not None,
            reason=fields.pop("reason"),
            message=fields.pop("message"),
            generation=blackout.generation,
            previous=blackout.status.get("conditions") or (),
            now=now,
        )
        if differs(fields, blackout.status):
            body = await self._kube.patch(
                API_VERSION, BLACKOUTS, ref.namespace, ref.name, {"status": fields}, subresource="status"
            )
            self._store.blackouts.upsert(AlertBlackout.from_body(body), body)
            self._noise.blackout_written(ref, blackout.status, suppressed)
        if next_change is not None:
            delay = min(max((next_change - now).total_seconds(), 0.0), MAX_REQUEUE_SECONDS)
            self._queue.add_after((BLACKOUTS, ref), delay)

    def _fields(
        self, blackout: AlertBlackout, now: datetime.datetime
    ) -> tuple[dict[str, Any], datetime.datetime | None]:
        """(status fields with the Ready reason and message, when the blackout next opens or closes)."""
        spec = blackout.spec
        if spec is None:
            nothing: dict[str, Any] = {"active": False, "currentWindow": None, "nextWindow": None, "rules": []}
            return {**nothing, "reason": "InvalidSpec", "message": str(blackout.spec_error)}, None
        spans = blackout_spans(spec, now)
        current, upcoming = open_span(spans, now), next_span(spans, now)
        rules = sorted(
            rule.ref.name
            for rule in self._store.rules.in_namespace(blackout.ref.namespace)
            if selector_matches(spec.rule_selector, rule.labels)
        )
        held = f"{len(rules)} rule(s) ({', '.join(rules) or 'none yet'})"
        if current is not None:
            reason = "Active"
            message = f"{spec.reason}: holding {held} until {format_time(current.end)} (after: {spec.after})"
        elif upcoming is not None:
            reason = "Scheduled"
            message = f"{spec.reason}: next window {format_time(upcoming.start)} to {format_time(upcoming.end)}"
        else:
            reason, message = "Expired", f"{spec.reason}: every window is in the past; it holds nothing back"
        fields = {
            "active": current is not None,
            "currentWindow": _window(current),
            "nextWindow": _window(upcoming),
            "rules": rules,
            "reason": reason,
            "message": message,
        }
        next_change = current.end if current is not None else upcoming.start if upcoming is not None else None
        return fields, next_change
