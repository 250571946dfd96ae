"""Pure noise control (DESIGN.md §9): whether an alert may open an incident at one destination now, and if not, why.

For each rule that routes the alert to the destination, in this order: the rule's operating schedule, the
namespace's blackouts that select the rule, the rule's cooldown, the rule's daily cap. The alert is
delivered if any rule lets it through. A snoozed alert is held back before any rule is asked. The clock
is an argument; facts across alerts (earlier incidents) come from an ``AdmissionHistory``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from incidentio_operator.api import AlertBlackout, AlertBlackoutSpec, AlertRule, DataAlert, ObjectRef, format_time
from incidentio_operator.decisions.routing import selector_matches
from incidentio_operator.decisions.suppression.windows import (
    UTC,
    Span,
    blackout_spans,
    local_day_start,
    next_span,
    open_span,
    schedule_spans,
)


class Reason(StrEnum):
    """Why a delivery was held back: the closed vocabulary of a held delivery's ``reason``."""

    SNOOZED = "Snoozed"
    OUTSIDE_SCHEDULE = "OutsideSchedule"
    BLACKOUT = "Blackout"
    COOLDOWN = "Cooldown"
    DAILY_CAP = "DailyCap"


@dataclass(frozen=True)
class Held:
    """One reason to hold an alert back from a destination: a rule's, a blackout's or the snooze's."""

    reason: Reason
    message: str
    # When to look again; None: suppressed for good (for this trigger epoch).
    deferred_until: datetime.datetime | None = None
    rule: str = ""
    blackout: str = ""
    in_favour_of: str = ""


@dataclass(frozen=True)
class Verdict:
    """Deliver (some rule let the alert through), or held back: deferred until a time, or suppressed."""

    admitted_by: tuple[str, ...]
    held: tuple[Held, ...] = ()
    # Every rule that routes the alert to the destination (a snooze holds it back for all of them).
    rules: tuple[str, ...] = ()

    @property
    def deliver(self) -> bool:
        return bool(self.admitted_by)

    @property
    def deferred_until(self) -> datetime.datetime | None:
        """The earliest time a deferring rule may let it through; None when delivered or suppressed for good."""
        if self.deliver:
            return None
        times = [held.deferred_until for held in self.held if held.deferred_until is not None]
        return min(times) if times else None

    @property
    def leading(self) -> Held:
        """The reason shown first: the one that defers it (soonest), else the first rule's."""
        deferring = [(held.deferred_until, index) for index, held in enumerate(self.held) if held.deferred_until]
        return self.held[min(deferring)[1]] if deferring else self.held[0]

    @property
    def message(self) -> str:
        return "; ".join(held.message for held in self.held)


@dataclass(frozen=True)
class PastAdmission:
    """An incident a rule let through earlier: when, for which alert, and its reference (once known)."""

    at: datetime.datetime
    alert: str
    reference: str = ""


# (alert UID, destination label, trigger epoch): one delivery; its own admission never counts against it.
AdmissionKey = tuple[str, str, int]


class AdmissionHistory(Protocol):
    """Facts across alerts that cooldowns and daily caps need (the controller keeps them; tests pass their own)."""

    def last_admission(
        self, rule: ObjectRef, destination: ObjectRef, subject: str, event_type: str, *, excluding: AdmissionKey
    ) -> PastAdmission | None: ...

    def admitted_since(self, rule: ObjectRef, since: datetime.datetime, *, excluding: AdmissionKey) -> int: ...


class NoHistory:
    """No earlier incidents: what an offline tool knows."""

    def last_admission(
        self, rule: ObjectRef, destination: ObjectRef, subject: str, event_type: str, *, excluding: AdmissionKey
    ) -> PastAdmission | None:
        return None

    def admitted_since(self, rule: ObjectRef, since: datetime.datetime, *, excluding: AdmissionKey) -> int:
        return 0


@dataclass(frozen=True)
class NoiseFacts:
    """What noise control needs beyond the alert: the namespace's rules by name, its blackouts, earlier incidents."""

    rules: Mapping[str, AlertRule] = field(default_factory=dict)
    blackouts: Sequence[AlertBlackout] = ()
    history: AdmissionHistory = field(default_factory=NoHistory)


@dataclass(frozen=True)
class Candidate:
    """One delivery about to be opened: the alert, where, for which epoch, through which rules."""

    alert: DataAlert
    destination: ObjectRef
    label: str
    epoch: int
    rules: tuple[str, ...]

    @property
    def key(self) -> AdmissionKey:
        return (self.alert.uid, self.label, self.epoch)

    @property
    def subject(self) -> str:
        return cooldown_subject(self.alert)


def cooldown_subject(alert: DataAlert) -> str:
    """What a cooldown counts repeats of: the alert's asset, or the alert itself when it names no asset."""
    return (alert.spec.asset_key if alert.spec else "") or f"dataalert/{alert.ref.name}"


def evaluate(candidate: Candidate, facts: NoiseFacts, now: datetime.datetime) -> Verdict:
    """The verdict for one delivery at ``now``: snooze first, then each rule's schedule, blackouts, cooldown, cap."""
    spec = candidate.alert.spec
    if spec is not None and spec.snoozed_at(now):
        assert spec.snoozed_until is not None
        until = spec.snoozed_until
        snoozed = Held(Reason.SNOOZED, f"snoozed until {format_time(until)}", deferred_until=until)
        return Verdict((), (snoozed,), candidate.rules)
    admitted: list[str] = []
    held: list[Held] = []
    # Which blackouts are open does not depend on the rule: asked once here, not once per rule and blackout.
    blackouts = active_blackouts(facts.blackouts, now)
    for name in candidate.rules:
        rule = facts.rules.get(name)
        reason = None if rule is None else _rule_holds(rule, candidate, facts, blackouts, now)
        if reason is None:
            admitted.append(name)
        else:
            held.append(reason)
    return Verdict(tuple(admitted), tuple(held), candidate.rules)


def _rule_holds(
    rule: AlertRule,
    candidate: Candidate,
    facts: NoiseFacts,
    blackouts: Sequence[ActiveBlackout],
    now: datetime.datetime,
) -> Held | None:
    return (
        outside_schedule(rule, now)
        or blacked_out(rule, blackouts)
        or cooling_down(rule, candidate, facts.history, now)
        or capped(rule, candidate, facts.history, now)
    )


def outside_schedule(rule: AlertRule, now: datetime.datetime) -> Held | None:
    """The rule's schedule is closed at ``now``: deferred to its next opening, or dropped."""
    schedule = rule.spec.schedule if rule.spec else None
    if schedule is None:
        return None
    spans = schedule_spans(schedule, now)
    if open_span(spans, now) is not None:
        return None
    windows = ", ".join(str(window) for window in schedule.windows)
    where = f"rule {rule.ref.name}: outside its schedule ({schedule.time_zone}: {windows})"
    opening = next_span(spans, now)
    if schedule.outside == "Drop" or opening is None:
        return Held(Reason.OUTSIDE_SCHEDULE, f"{where}: dropped (outside: Drop)", rule=rule.ref.name)
    until = opening.start
    return Held(Reason.OUTSIDE_SCHEDULE, f"{where}: deferred until {format_time(until)}", until, rule.ref.name)


@dataclass(frozen=True)
class ActiveBlackout:
    """A blackout open at the moment asked about, and the span of its windows that holds that moment."""

    blackout: AlertBlackout
    spec: AlertBlackoutSpec
    span: Span


def active_blackouts(blackouts: Sequence[AlertBlackout], now: datetime.datetime) -> list[ActiveBlackout]:
    """The blackouts (valid ones) open at ``now``, by name: the order in which they hold a rule."""
    active = []
    for blackout in sorted(blackouts, key=lambda b: b.ref.name):
        spec = blackout.spec
        span = None if spec is None else open_span(blackout_spans(spec, now), now)
        if spec is not None and span is not None:
            active.append(ActiveBlackout(blackout, spec, span))
    return active


def blacked_out(rule: AlertRule, blackouts: Sequence[ActiveBlackout]) -> Held | None:
    """The first of the active ``blackouts`` of the rule's namespace that selects the rule: deferred to its end,
    or dropped."""
    for active in blackouts:
        blackout, spec, span = active.blackout, active.spec, active.span
        if blackout.ref.namespace != rule.ref.namespace or not selector_matches(spec.rule_selector, rule.labels):
            continue
        where = (
            f"blackout {blackout.ref.name} ({spec.reason}, {format_time(span.start)} to {format_time(span.end)})"
            f" holds rule {rule.ref.name}"
        )
        name = blackout.ref.name
        if spec.after == "Drop":
            return Held(Reason.BLACKOUT, f"{where}: dropped (after: Drop)", rule=rule.ref.name, blackout=name)
        message = f"{where}: deferred until {format_time(span.end)}"
        return Held(Reason.BLACKOUT, message, span.end, rule.ref.name, name)
    return None


def cooling_down(
    rule: AlertRule, candidate: Candidate, history: AdmissionHistory, now: datetime.datetime
) -> Held | None:
    """This rule opened an incident at this destination for this asset and event type within its cooldown."""
    cooldown = rule.spec.cooldown if rule.spec else None
    spec = candidate.alert.spec
    if cooldown is None or spec is None:
        return None
    last = history.last_admission(
        rule.ref, candidate.destination, candidate.subject, spec.event_type, excluding=candidate.key
    )
    if last is None or now >= last.at + cooldown:
        return None
    favoured = last.reference or f"the incident of dataalert {last.alert}"
    message = (
        f"rule {rule.ref.name}: cooldown {format_duration(cooldown)}: {favoured} opened at {format_time(last.at)} "
        f"for {candidate.subject} ({spec.event_type}); suppressed in favour of it until "
        f"{format_time(last.at + cooldown)}"
    )
    return Held(Reason.COOLDOWN, message, rule=rule.ref.name, in_favour_of=last.reference or last.alert)


def capped(rule: AlertRule, candidate: Candidate, history: AdmissionHistory, now: datetime.datetime) -> Held | None:
    """The rule opened its daily cap of incidents already today (in its schedule's time zone, else UTC)."""
    cap = rule.spec.max_incidents_per_day if rule.spec else None
    if cap is None:
        return None
    day, since = day_of(rule, now)
    if history.admitted_since(rule.ref, since, excluding=candidate.key) < cap:
        return None
    message = (
        f"rule {rule.ref.name}: daily cap of {cap} incident(s) reached ({day}, {rule_time_zone(rule)}): "
        "suppressed for the rest of the day"
    )
    return Held(Reason.DAILY_CAP, message, rule=rule.ref.name)


def rule_time_zone(rule: AlertRule) -> str:
    """The time zone a rule's day is counted in: its schedule's, else UTC."""
    return rule.spec.schedule.time_zone if rule.spec and rule.spec.schedule else "UTC"


def day_of(rule: AlertRule, now: datetime.datetime) -> tuple[str, datetime.datetime]:
    """(the rule's current day as YYYY-MM-DD, the UTC instant it began), in its schedule's time zone or UTC."""
    zone = rule.spec.schedule.zone if rule.spec and rule.spec.schedule else None
    if zone is None:
        start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return start.date().isoformat(), start
    day = now.astimezone(zone).date()
    return day.isoformat(), local_day_start(day, zone)


def format_duration(value: datetime.timedelta) -> str:
    """``1h30m``, ``10m``, ``45s``: the form the spec's durations are written in."""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{seconds}s" if seconds else "")
    return text or "0s"
