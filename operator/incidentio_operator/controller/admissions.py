"""The admission ledger: which incidents each rule let through, when, for which asset, across every alert.

Cooldowns and daily caps are facts across alerts, so they live here rather than in any one status. They
are derived from the alerts' statuses (each delivery that went out records its rules, epoch and openedAt),
fed by the startup listing, every watch event and our own writes, so a restart rebuilds them; and a plan
that is about to send a create reserves its admission at once, before any await, so two workers cannot
both take the last place under a cap. Entries outlive the status that showed them (history is pruned,
alerts are deleted) until they expire; after a restart only what the statuses still hold is known, plus
each rule's own count of the day (``set_floor``).
"""

from __future__ import annotations

import bisect
import datetime
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, replace

from incidentio_operator.api import DataAlert, ObjectRef
from incidentio_operator.decisions.delivery import HELD_STATES, Delivery, destination_ref
from incidentio_operator.decisions.suppression import AdmissionKey, PastAdmission, cooldown_subject

CooldownKey = tuple[ObjectRef, ObjectRef, str, str]


@dataclass(frozen=True, slots=True)
class _Entry:
    namespace: str
    alert: str
    destination: ObjectRef
    subject: str
    event_type: str
    rules: tuple[str, ...]
    at: datetime.datetime
    reference: str


class AdmissionLedger:
    """An ``AdmissionHistory`` (decisions/suppression) kept current from the alerts the controller sees."""

    def __init__(self) -> None:
        self._entries: dict[AdmissionKey, _Entry] = {}
        self._by_cooldown: dict[CooldownKey, set[AdmissionKey]] = {}
        # Per rule: its admissions by time, so that a cap counts the day's with a bisection (asked for every
        # capped rule of every decision) rather than a pass over all it keeps.
        self._by_rule: dict[ObjectRef, list[tuple[datetime.datetime, AdmissionKey]]] = {}
        # Every admission by time (a heap), so that expiring walks only what expires: with 50,000 alerts
        # holding an admission, a pass over all of them at every sweep held the event loop for ~90 ms.
        self._by_time: list[tuple[datetime.datetime, AdmissionKey]] = []
        # Per rule: (the UTC start of its day, incidents it counted that day) from its own status.
        self._floors: dict[ObjectRef, tuple[datetime.datetime, int]] = {}

    def observe(self, alert: DataAlert, now: datetime.datetime) -> None:
        """Note every delivery of the alert's status that went out; one still in flight counts from ``now``."""
        for admission in alert.admissions:
            at = admission.opened_at or now
            self._note(alert, admission.destination, admission.epoch, admission.rules, at, admission.reference)

    def reserve(self, alert: DataAlert, deliveries: Iterable[Delivery], now: datetime.datetime) -> set[ObjectRef]:
        """Note the deliveries a plan is about to send; returns the rules that gained an admission."""
        gained: set[ObjectRef] = set()
        for delivery in deliveries:
            sent = delivery.attempts > 0 or bool(delivery.incident_id)
            if not sent or delivery.state in HELD_STATES or (alert.uid, delivery.destination, delivery.epoch) in self:
                continue
            rules = delivery.admitted_by or delivery.rules
            self._note(alert, delivery.destination, delivery.epoch, rules, now, delivery.reference)
            gained.update(ObjectRef(alert.ref.namespace, name) for name in rules)
        return gained

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def _note(
        self, alert: DataAlert, label: str, epoch: int, rules: tuple[str, ...], at: datetime.datetime, reference: str
    ) -> None:
        if alert.spec is None:
            return
        key = (alert.uid, label, epoch)
        known = self._entries.get(key)
        if known is not None:
            if reference and reference != known.reference:
                self._entries[key] = replace(known, reference=reference)
            return
        namespace = alert.ref.namespace
        entry = _Entry(
            namespace=namespace,
            alert=alert.ref.name,
            destination=destination_ref(label, namespace),
            subject=cooldown_subject(alert),
            event_type=alert.spec.event_type,
            rules=rules,
            at=at,
            reference=reference,
        )
        self._entries[key] = entry
        item = (at, key)  # one tuple shared by the heap and every rule's list
        heapq.heappush(self._by_time, item)
        for name in rules:
            rule = ObjectRef(namespace, name)
            admitted = self._by_rule.setdefault(rule, [])
            if not admitted or admitted[-1] <= item:
                admitted.append(item)  # the usual order: no search, no shift of the list
            else:
                bisect.insort(admitted, item)
            self._by_cooldown.setdefault((rule, entry.destination, entry.subject, entry.event_type), set()).add(key)

    # ----------------------------------------------------------------- AdmissionHistory

    def last_admission(
        self, rule: ObjectRef, destination: ObjectRef, subject: str, event_type: str, *, excluding: AdmissionKey
    ) -> PastAdmission | None:
        keys = self._by_cooldown.get((rule, destination, subject, event_type), set()) - {excluding}
        if not keys:
            return None
        latest = max((self._entries[key] for key in keys), key=lambda entry: entry.at)
        return PastAdmission(latest.at, latest.alert, latest.reference)

    def admitted_since(self, rule: ObjectRef, since: datetime.datetime, *, excluding: AdmissionKey) -> int:
        admitted = self._by_rule.get(rule, [])
        counted = len(admitted) - bisect.bisect_left(admitted, (since,))
        own = self._entries.get(excluding)
        if own is not None and own.at >= since and own.namespace == rule.namespace and rule.name in own.rules:
            counted -= 1
        floor = self._floors.get(rule)
        return max(counted, floor[1]) if floor is not None and floor[0] == since else counted

    # ----------------------------------------------------------------- upkeep

    def set_floor(self, rule: ObjectRef, since: datetime.datetime, count: int) -> None:
        """The rule's status counted ``count`` incidents in the day that began at ``since``: never count fewer."""
        self._floors[rule] = (since, count)

    def expire(self, before: datetime.datetime) -> None:
        """Forget admissions older than ``before``: no cooldown or day reaches back that far."""
        touched: set[ObjectRef] = set()
        while self._by_time and self._by_time[0][0] < before:
            _, key = heapq.heappop(self._by_time)
            entry = self._entries.pop(key)
            for name in entry.rules:
                rule = ObjectRef(entry.namespace, name)
                touched.add(rule)
                subject = (rule, entry.destination, entry.subject, entry.event_type)
                keys = self._by_cooldown.get(subject)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._by_cooldown[subject]
        for rule in touched:
            admitted = self._by_rule.get(rule)
            if admitted is None:
                continue
            del admitted[: bisect.bisect_left(admitted, (before,))]  # time-ordered: what expires comes first
            if not admitted:
                del self._by_rule[rule]

    def __len__(self) -> int:
        return len(self._entries)
