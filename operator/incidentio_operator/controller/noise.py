"""Noise control in the running controller: the facts a plan needs, and what held alerts leave behind.

It hands each alert's plan the namespace's rules, blackouts and the admission ledger; reserves the
admissions a plan is about to send; and turns every held delivery into a Normal Event on the alert, a
Prometheus count by reason, and counts for the rules' ``status.today`` and the blackouts'
``status.suppressedAlerts`` (batched, like the destinations' counters). It posts one Warning Event on a
rule the moment its daily cap is reached.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from incidentio_operator.api import BLACKOUTS, RULES, AlertRule, DataAlert, ObjectRef
from incidentio_operator.controller.admissions import AdmissionLedger
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.controller.recorder import EventRecorder
from incidentio_operator.controller.settings import Settings
from incidentio_operator.controller.store import Store
from incidentio_operator.controller.workqueue import ObjectKey, WorkQueue
from incidentio_operator.decisions.delivery import DeliveryEvent, Plan
from incidentio_operator.decisions.suppression import NoiseFacts, Reason, day_of, rule_time_zone

# No cooldown or rule day reaches further back than this; older admissions are forgotten.
LEDGER_HORIZON = datetime.timedelta(days=8)
_NOBODY = ("", "", 0)


class NoiseControl:
    """Owns the admission ledger and the held-back counts not yet written to a status."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        queue: WorkQueue[ObjectKey],
        metrics: Metrics,
        recorder: EventRecorder,
        clock: Callable[[], datetime.datetime],
    ) -> None:
        self._settings = settings
        self._store = store
        self._queue = queue
        self._metrics = metrics
        self._recorder = recorder
        self._clock = clock
        self.ledger = AdmissionLedger()
        # Held deliveries counted since the status was written: per (rule, its day) by reason, per blackout.
        self._rule_counts: dict[tuple[ObjectRef, str], Counter[str]] = {}
        self._blackout_counts: Counter[ObjectRef] = Counter()
        # The day each rule's cap-reached Warning was posted for: one Warning a day.
        self._capped: dict[ObjectRef, str] = {}

    def facts(self, namespace: str) -> NoiseFacts:
        """The namespace's rules (by name) and blackouts, and the ledger: what a plan weighs a delivery against."""
        rules = {rule.ref.name: rule for rule in self._store.rules.in_namespace(namespace)}
        return NoiseFacts(rules, tuple(self._store.blackouts.in_namespace(namespace)), self.ledger)

    # ----------------------------------------------------------------- what alerts and rules say

    def alert_changed(self, alert: DataAlert | None) -> None:
        if alert is not None and alert.admissions:
            self.ledger.observe(alert, self._clock())

    def rule_seen(self, rule: AlertRule) -> None:
        """A rule's own count of today survives what the alerts' statuses no longer show (pruned, deleted)."""
        today = rule.status.get("today")
        if rule.spec is None or not isinstance(today, Mapping):
            return
        day, since = day_of(rule, self._clock())
        if today.get("date") == day and today.get("timeZone") == rule_time_zone(rule):
            self.ledger.set_floor(rule.ref, since, int(today.get("incidentsOpened") or 0))
            if today.get("capReached"):
                self._capped[rule.ref] = day

    def planned(self, alert: DataAlert, plan: Plan) -> None:
        """A plan is about to send creates: reserve their admissions now, and warn the rules whose cap they reach."""
        gained = self.ledger.reserve(alert, plan.deliveries, self._clock())
        for ref in gained:
            rule = self._store.rules.get(ref)
            if rule is None or rule.spec is None or not (rule.spec.noise_controlled or "today" in rule.status):
                continue
            self._queue.add_after((RULES, ref), self._settings.summary_delay)
            self._warn_if_capped(rule)

    def _warn_if_capped(self, rule: AlertRule) -> None:
        cap = rule.spec.max_incidents_per_day if rule.spec else None
        day, since = day_of(rule, self._clock())
        if cap is None or self._capped.get(rule.ref) == day:
            return
        if self.ledger.admitted_since(rule.ref, since, excluding=_NOBODY) < cap:
            return
        self._capped[rule.ref] = day
        involved = self._store.rules.reference(rule.ref)
        message = (
            f"Daily cap of {cap} incident(s) reached ({day}, {rule_time_zone(rule)}): the rule's further alerts "
            "are suppressed until the day ends"
        )
        if involved is not None:
            self._recorder.post(involved, "Warning", "DailyCapReached", message)

    def held(self, alert: DataAlert, event: DeliveryEvent) -> None:
        """A delivery became Suppressed or Deferred: an Event on the alert, the metric, rule and blackout counts."""
        verdict = event.verdict
        if verdict is None or not verdict.held:
            return
        self._metrics.suppressions.labels(str(verdict.leading.reason)).inc()
        involved = self._store.alerts.reference(alert.ref)
        if involved is not None:
            reason = "IncidentDeferred" if event.action == "Deferred" else "IncidentSuppressed"
            self._recorder.post(involved, "Normal", reason, f"{event.message} ({event.destination})")
        namespace, now = alert.ref.namespace, self._clock()
        for held in verdict.held:
            names = (held.rule,) if held.rule else verdict.rules
            for name in names:
                self._count_for_rule(ObjectRef(namespace, name), held.reason, now)
            if held.blackout:
                blackout = ObjectRef(namespace, held.blackout)
                self._blackout_counts[blackout] += 1
                self._queue.add_after((BLACKOUTS, blackout), self._settings.summary_delay)

    def _count_for_rule(self, ref: ObjectRef, reason: Reason, now: datetime.datetime) -> None:
        rule = self._store.rules.get(ref)
        if rule is None or rule.spec is None:
            return
        day, _ = day_of(rule, now)
        self._rule_counts.setdefault((ref, day), Counter())[str(reason)] += 1
        self._queue.add_after((RULES, ref), self._settings.summary_delay)

    # ----------------------------------------------------------------- the statuses

    def rule_status(self, rule: AlertRule) -> dict[str, Any]:
        """``today`` for the rule's status ({} for a rule noise control has nothing to say about)."""
        now = self._clock()
        day, since = day_of(rule, now)
        pending = self._rule_counts.get((rule.ref, day), Counter())
        if rule.spec is None or not (rule.spec.noise_controlled or pending or "today" in rule.status):
            return {}
        previous = rule.status.get("today") if isinstance(rule.status.get("today"), Mapping) else {}
        written = (previous or {}).get("suppressed") if (previous or {}).get("date") == day else {}
        suppressed = Counter({str(k): int(v) for k, v in (written or {}).items()}) + pending
        opened = self.ledger.admitted_since(rule.ref, since, excluding=_NOBODY)
        today: dict[str, Any] = {
            "date": day,
            "timeZone": rule_time_zone(rule),
            "incidentsOpened": opened,
            "suppressed": dict(sorted(suppressed.items())),
        }
        cap = rule.spec.max_incidents_per_day
        if cap is not None:
            today["capReached"] = opened >= cap
        # Look again when the day turns, so yesterday's counts do not stand as today's.
        tomorrow = day_of(rule, now + datetime.timedelta(days=1, hours=1))[1]
        self._queue.add_after((RULES, rule.ref), max((tomorrow - now).total_seconds(), 1.0))
        return {"today": today}

    def rule_written(self, rule: AlertRule, fields: Mapping[str, Any]) -> None:
        """The rule's status with ``fields`` was written: its counts are on record, drop them here."""
        today = fields.get("today")
        if not isinstance(today, Mapping):
            return
        key = (rule.ref, str(today.get("date")))
        previous = rule.status.get("today") if isinstance(rule.status.get("today"), Mapping) else {}
        written = (previous or {}).get("suppressed") if (previous or {}).get("date") == key[1] else {}
        sent = Counter(today.get("suppressed") or {}) - Counter(written or {})
        remaining = self._rule_counts.get(key, Counter()) - sent
        self._rule_counts.pop(key, None)
        if remaining:
            self._rule_counts[key] = remaining
        for stale in [k for k in self._rule_counts if k[0] == rule.ref and k[1] != key[1]]:
            del self._rule_counts[stale]

    def blackout_suppressed(self, ref: ObjectRef, status: Mapping[str, Any]) -> int:
        """``suppressedAlerts`` as the blackout's status should say it now."""
        return int(status.get("suppressedAlerts") or 0) + self._blackout_counts.get(ref, 0)

    def blackout_written(self, ref: ObjectRef, before: Mapping[str, Any], written: int) -> None:
        self._blackout_counts[ref] -= written - int(before.get("suppressedAlerts") or 0)
        if self._blackout_counts[ref] <= 0:
            del self._blackout_counts[ref]

    def expire(self) -> None:
        """Forget admissions no cooldown or day can reach (called from the controller's sweep)."""
        self.ledger.expire(self._clock() - LEDGER_HORIZON)

    def forget_rule(self, ref: ObjectRef) -> None:
        self._capped.pop(ref, None)
        for key in [k for k in self._rule_counts if k[0] == ref]:
            del self._rule_counts[key]
