"""The AlertRule reconciler: its destinations' readiness, and how many alerts it matches (counted in batches)."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from typing import Any

from incidentio_operator.api import (
    API_VERSION,
    RULES,
    AlertRule,
    DataAlert,
    ObjectRef,
    differs,
    format_time,
    ready_conditions,
)
from incidentio_operator.controller.noise import NoiseControl
from incidentio_operator.controller.settings import Settings
from incidentio_operator.controller.store import Store
from incidentio_operator.controller.workqueue import ObjectKey, WorkQueue
from incidentio_operator.kube import KubeClient


class RuleReconciler:
    """Writes a rule's status; owns when each rule counts its matched alerts again."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        queue: WorkQueue[ObjectKey],
        kube: KubeClient,
        clock: Callable[[], datetime.datetime],
        *,
        noise: NoiseControl,
        alerts_listing: Callable[[], bool] = lambda: False,
    ) -> None:
        self._settings = settings
        # True while kopf hands over a full list of the alerts (Resync.listing): a count then would be partial.
        self._alerts_listing = alerts_listing
        self._noise = noise
        self._store = store
        self._queue = queue
        self._kube = kube
        self._clock = clock
        self._last_match: dict[ObjectRef, datetime.datetime] = {}
        # Rules waiting to count their alerts again, and since when (see schedule_recount).
        self._recount_timers: dict[ObjectRef, asyncio.TimerHandle] = {}
        self._recount_since: dict[ObjectRef, float] = {}
        # Rules whose next reconciliation counts their alerts; any other keeps the count it has.
        self._recount_ready: set[ObjectRef] = set()
        # Rules whose recount came due while the alerts were being listed: counted once the listing is over.
        self._after_listing: set[ObjectRef] = set()
        # Until kopf's first listing of the alerts is over, it may not even have begun: counts wait for it
        # too, but at most 10 summary delays (with no alert at all there is no listing to wait for).
        self._listed_once = False
        self._first_wait: asyncio.TimerHandle | None = None

    async def reconcile(self, ref: ObjectRef) -> None:
        rule = self._store.rules.get(ref)
        if rule is None:
            return
        fields: dict[str, Any] = {"matchedAlerts": self._matched_alerts(rule)}
        last_match = self._last_match.get(ref)
        if last_match is not None:
            fields["lastMatchedAt"] = format_time(last_match)
        fields.update(self._noise.rule_status(rule))
        entries, ready, reason, message = self._destinations(rule)
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
                now=self._clock(),
            ),
        )
        if differs(fields, rule.status):
            body = await self._kube.patch(
                API_VERSION, RULES, ref.namespace, ref.name, {"status": fields}, subresource="status"
            )
            self._store.rules.upsert(AlertRule.from_body(body), body)
            self._noise.rule_written(rule, fields)

    def _matched_alerts(self, rule: AlertRule) -> int:
        """Counted only when asked to (alerts stopped arriving, or new matches).

        A rule seen at startup, before the alerts are listed, keeps the count it has rather than
        write a partial one; so does one asked to count while the alerts are being listed, until that is over.
        """
        previous = rule.status.get("matchedAlerts")
        if isinstance(previous, int) and rule.ref in self._recount_ready and self._alerts_listing():
            self._recount_ready.discard(rule.ref)
            self._after_listing.add(rule.ref)
        if rule.ref not in self._recount_ready and isinstance(previous, int):
            return previous
        self._recount_ready.discard(rule.ref)
        return self._store.alerts.matching(rule.ref)

    def _destinations(self, rule: AlertRule) -> tuple[list[dict[str, Any]], bool, str, str]:
        """(one entry per destination the rule names, ready, reason, message)."""
        if rule.spec is None:
            return [], False, "InvalidSpec", str(rule.spec_error)
        entries: list[dict[str, Any]] = []
        problems: list[str] = []
        for reference in rule.spec.destinations:
            target = reference.resolve(rule.ref.namespace)
            entry: dict[str, Any] = {"name": target.name, "namespace": target.namespace, "ready": False}
            destination = self._store.destinations.get(target)
            if target.namespace != rule.ref.namespace and not self._settings.allow_cross_namespace:
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
        if problems:
            return entries, False, "DestinationNotReady", "; ".join(problems)
        return entries, True, "Ready", f"all {len(entries)} destination(s) Ready"

    # ----------------------------------------------------------------- counting matched alerts

    def note_matches(self, alert: DataAlert, matched: tuple[str, ...]) -> None:
        """Rules the alert matches now and did not before: note the time and count again soon."""
        before = set(alert.matched_rules)
        for name in matched:
            if name not in before:
                rule = ObjectRef(alert.ref.namespace, name)
                self._last_match[rule] = self._clock()
                self._recount_ready.add(rule)
                self._queue.add_after((RULES, rule), self._settings.summary_delay)

    def alert_changed(self, before: DataAlert | None, after: DataAlert | None) -> None:
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
            self.schedule_recount(ObjectRef(either.ref.namespace, name))

    def schedule_recount(self, rule: ObjectRef) -> None:
        """Recount once alerts stop arriving for a moment (at most 10 summary delays late), and never while
        kopf is still handing over a full list of the alerts: then once that listing is over.

        A restart lists thousands of alerts over a minute or more; counting at each summary delay would
        write every partial count in between. New matches still show at each delay (`note_matches`).
        """
        pending = self._recount_timers.pop(rule, None)
        if pending is not None:
            pending.cancel()
        if self._alerts_listing():
            # One timer per listed alert would only be cancelled by the next: the listing's end counts.
            self._recount_since.pop(rule, None)
            self._after_listing.add(rule)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        first = self._recount_since.setdefault(rule, now)
        delay = min(self._settings.summary_delay, max(0.0, first + 10 * self._settings.summary_delay - now))
        self._recount_timers[rule] = loop.call_later(delay, self._recount_now, rule)

    def _recount_now(self, rule: ObjectRef) -> None:
        self._recount_timers.pop(rule, None)
        self._recount_since.pop(rule, None)
        if self._alerts_listing() or not self._listed_once:
            self._after_listing.add(rule)
            if not self._listed_once and self._first_wait is None:
                delay = 10 * self._settings.summary_delay
                self._first_wait = asyncio.get_running_loop().call_later(delay, self.alerts_listed)
            return
        self._recount_ready.add(rule)
        self._queue.add((RULES, rule))

    def alerts_watched(self) -> None:
        """An alert's watch event (not a listed one): kopf lists before it watches, so its first listing is over."""
        if not self._listed_once:
            self.alerts_listed()

    def alerts_listed(self) -> None:
        """A full list of the alerts is over: every rule that waited for it counts after a summary delay
        (should a stall of the listing have passed for its end, more alerts arriving meanwhile push it on)."""
        self._listed_once = True
        if self._first_wait is not None:
            self._first_wait.cancel()
        waiting, self._after_listing = self._after_listing, set()
        for rule in waiting:
            self.schedule_recount(rule)

    def forget(self, rule: ObjectRef) -> None:
        """The rule is gone: keep no state for it."""
        self._recount_ready.discard(rule)
        self._after_listing.discard(rule)
        self._recount_since.pop(rule, None)
        self._last_match.pop(rule, None)
        timer = self._recount_timers.pop(rule, None)
        if timer is not None:
            timer.cancel()

    def stop(self) -> None:
        if self._first_wait is not None:
            self._first_wait.cancel()
        for timer in self._recount_timers.values():
            timer.cancel()
        self._recount_timers.clear()
