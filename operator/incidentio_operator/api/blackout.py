"""The AlertBlackout kind: windows in which a namespace's rules open no incident (planned maintenance, holidays)."""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incidentio_operator.api.common import ObjectRef, SpecError, choice, mapping, parse_time, string
from incidentio_operator.api.rule import LabelSelector
from incidentio_operator.api.schedule import clock_text, parse_clock, parse_time_zone

BLACKOUTS = "alertblackouts"
AFTER_ACTIONS = ("Defer", "Drop")


@dataclass(frozen=True)
class OneTimeWindow:
    """From ``start`` to ``end``, absolute instants (RFC 3339 with an offset)."""

    start: datetime.datetime
    end: datetime.datetime

    def __str__(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


@dataclass(frozen=True)
class YearlyWindow:
    """Every year on ``month``/``day`` from ``start`` to ``end`` minutes after local midnight (wrapping past it
    when the end is at or before the start). 29 February happens in leap years only."""

    month: int
    day: int
    start: int
    end: int

    def __str__(self) -> str:
        return f"every {self.month:02d}-{self.day:02d} {clock_text(self.start)}-{clock_text(self.end)}"


BlackoutWindow = OneTimeWindow | YearlyWindow


@dataclass(frozen=True)
class AlertBlackoutSpec:
    reason: str
    zone: zoneinfo.ZoneInfo
    windows: tuple[BlackoutWindow, ...]
    rule_selector: LabelSelector = field(default_factory=LabelSelector)
    after: str = "Defer"

    @property
    def time_zone(self) -> str:
        return self.zone.key

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> AlertBlackoutSpec:
        reason = string(spec.get("reason"), "spec.reason")
        if not reason:
            raise SpecError("spec.reason", "say why alerts are held back, e.g. Warehouse migration")
        windows = tuple(_window(raw, f"spec.windows[{index}]") for index, raw in enumerate(spec.get("windows") or []))
        if not windows:
            raise SpecError("spec.windows", "a blackout needs at least one window")
        return cls(
            reason=reason,
            zone=parse_time_zone(spec.get("timeZone"), "spec.timeZone"),
            windows=windows,
            rule_selector=LabelSelector.parse(spec.get("ruleSelector"), "spec.ruleSelector"),
            after=choice(spec.get("after"), "spec.after", AFTER_ACTIONS, "Defer"),
        )


def _window(raw: Any, where: str) -> BlackoutWindow:
    item = mapping(raw, where)
    if item.get("yearly") is None:
        start = parse_time(string(item.get("start"), f"{where}.start"))
        end = parse_time(string(item.get("end"), f"{where}.end"))
        if start is None or end is None:
            field_name = f"{where}.start" if start is None else f"{where}.end"
            raise SpecError(field_name, "a one-time window needs RFC 3339 times such as 2026-12-05T22:00:00Z")
        if end <= start:
            raise SpecError(f"{where}.end", "must be after start")
        return OneTimeWindow(start, end)
    yearly = mapping(item.get("yearly"), f"{where}.yearly")
    month, day = yearly.get("month"), yearly.get("day")
    if not isinstance(month, int) or not 1 <= month <= 12:
        raise SpecError(f"{where}.yearly.month", "must be a month number, 1 to 12")
    if not isinstance(day, int) or not 1 <= day <= _days_in(month):
        raise SpecError(f"{where}.yearly.day", f"must be a day of month {month}, 1 to {_days_in(month)}")
    start_minute = parse_clock(item.get("start"), f"{where}.start")
    end_minute = parse_clock(item.get("end"), f"{where}.end", end=True)
    if start_minute == end_minute:
        raise SpecError(f"{where}.end", "must differ from start (a whole day is 00:00 to 24:00)")
    return YearlyWindow(month, day, start_minute, end_minute)


def _days_in(month: int) -> int:
    return 29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31


@dataclass(frozen=True)
class AlertBlackout:
    ref: ObjectRef
    generation: int
    spec: AlertBlackoutSpec | None
    spec_error: SpecError | None
    status: Mapping[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> AlertBlackout:
        meta = body.get("metadata") or {}
        spec: AlertBlackoutSpec | None = None
        error: SpecError | None = None
        try:
            spec = AlertBlackoutSpec.parse(body.get("spec") or {})
        except SpecError as exc:
            error = exc
        return cls(ObjectRef.of(body), int(meta.get("generation") or 0), spec, error, body.get("status") or {})
