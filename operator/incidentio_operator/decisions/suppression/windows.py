"""Pure time arithmetic of schedules and blackouts: which windows are open at a moment, and when the next opens.

Windows are written in local wall-clock time. A wall-clock time that does not exist (skipped when clocks
spring forward) or exists twice (repeated when they fall back) is read as RFC 5545 §3.3.5 says, which is
also what Python's ``fold=0`` does: with the UTC offset in force before the change, so a skipped 02:30 is
03:30 after a one-hour spring-forward, and a repeated 02:30 is its first occurrence.

Every alert decision asks each of its rules' schedules and each blackout whether it is open, and the answer
changes only with the local day (schedules) or year (blackouts): the spans are computed once per
(windows, time zone, local day or year) and kept, bounded, for the decisions after it.
"""

from __future__ import annotations

import datetime
import functools
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from incidentio_operator.api import AlertBlackoutSpec, Schedule
from incidentio_operator.api.blackout import BlackoutWindow, OneTimeWindow
from incidentio_operator.api.schedule import MINUTES_PER_DAY, DailyWindow

UTC = datetime.UTC
# Every weekday comes round within a week; a window opened the day before may still be open.
_SCHEDULE_DAYS = range(-1, 9)
# Distinct (windows, zone, local day) in use at once: a few per schedule and blackout of the cluster.
_CACHED_SPAN_SETS = 1024


@dataclass(frozen=True, order=True)
class Span:
    """One occurrence of a window: open from ``start`` (included) to ``end`` (excluded), both in UTC."""

    start: datetime.datetime
    end: datetime.datetime

    def holds(self, moment: datetime.datetime) -> bool:
        return self.start <= moment < self.end


def local_instant(day: datetime.date, minute: int, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    """The UTC instant ``minute`` minutes after local midnight of ``day`` (past 24:00 runs into the next days)."""
    extra_days, minute = divmod(minute, MINUTES_PER_DAY)
    wall = datetime.time(minute // 60, minute % 60)
    local = datetime.datetime.combine(day + datetime.timedelta(days=extra_days), wall, tzinfo=zone)
    return local.astimezone(UTC)


@functools.lru_cache(maxsize=_CACHED_SPAN_SETS)
def local_day_start(day: datetime.date, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    """The UTC instant the local ``day`` began (midnight, or the first instant after it on a DST day)."""
    return local_instant(day, 0, zone)


def merged(spans: Iterable[Span]) -> list[Span]:
    """Spans that overlap or touch joined into one: a window 08:00-18:00 and one 18:00-22:00 are one 08:00-22:00."""
    result: list[Span] = []
    for span in sorted(spans):
        if span.end <= span.start:
            continue  # a window inside a skipped hour never opens that day
        if result and span.start <= result[-1].end:
            result[-1] = Span(result[-1].start, max(result[-1].end, span.end))
        else:
            result.append(span)
    return result


def schedule_spans(schedule: Schedule, around: datetime.datetime) -> tuple[Span, ...]:
    """The schedule's openings from the local day before ``around`` to eight days after, merged."""
    return _schedule_spans(schedule.windows, schedule.zone, around.astimezone(schedule.zone).date())


@functools.lru_cache(maxsize=_CACHED_SPAN_SETS)
def _schedule_spans(
    windows: tuple[DailyWindow, ...], zone: zoneinfo.ZoneInfo, today: datetime.date
) -> tuple[Span, ...]:
    spans = []
    for offset in _SCHEDULE_DAYS:
        day = today + datetime.timedelta(days=offset)
        for window in windows:
            if day.isoweekday() in window.days:
                end = window.end + (MINUTES_PER_DAY if window.wraps else 0)
                spans.append(Span(local_instant(day, window.start, zone), local_instant(day, end, zone)))
    return tuple(merged(spans))


def blackout_spans(spec: AlertBlackoutSpec, around: datetime.datetime) -> tuple[Span, ...]:
    """The blackout's windows: every one-time window, and each yearly one in the years around ``around``, merged."""
    return _blackout_spans(spec.windows, spec.zone, around.astimezone(spec.zone).year)


@functools.lru_cache(maxsize=_CACHED_SPAN_SETS)
def _blackout_spans(windows: tuple[BlackoutWindow, ...], zone: zoneinfo.ZoneInfo, year: int) -> tuple[Span, ...]:
    return tuple(merged(_blackout_occurrences(windows, zone, year)))


def _blackout_occurrences(windows: tuple[BlackoutWindow, ...], zone: zoneinfo.ZoneInfo, year: int) -> Iterator[Span]:
    for window in windows:
        if isinstance(window, OneTimeWindow):
            yield Span(window.start.astimezone(UTC), window.end.astimezone(UTC))
            continue
        for candidate in (year - 1, year, year + 1):
            try:
                day = datetime.date(candidate, window.month, window.day)
            except ValueError:
                continue  # 29 February of a year that has none
            end = window.end + (MINUTES_PER_DAY if window.end <= window.start else 0)
            yield Span(local_instant(day, window.start, zone), local_instant(day, end, zone))


def open_span(spans: Iterable[Span], moment: datetime.datetime) -> Span | None:
    """The span holding ``moment``, if any."""
    return next((span for span in spans if span.holds(moment)), None)


def next_span(spans: Iterable[Span], moment: datetime.datetime) -> Span | None:
    """The first span that opens after ``moment``, if any."""
    return next((span for span in spans if span.start > moment), None)
