"""Times of day, time zones and an AlertRule's operating schedule, as parsed from a spec."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from incidentio_operator.api.common import SpecError, choice, mapping, string

MINUTES_PER_DAY = 24 * 60
OUTSIDE_ACTIONS = ("Defer", "Drop")
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def parse_time_zone(value: Any, field: str, default: str = "UTC") -> zoneinfo.ZoneInfo:
    """An IANA time zone (tz database name such as Europe/Berlin); SpecError naming ``field`` when unknown.

    The schema can only check the name's shape; whether the zone exists is known from the tz database
    (the system's, else the ``tzdata`` package).
    """
    name = string(value, field, default) or default
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SpecError(field, f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC") from None


def parse_clock(value: Any, field: str, *, end: bool = False) -> int:
    """``HH:MM`` (24-hour) as minutes after midnight; an end may also be ``24:00`` (the day's last minute included)."""
    text = string(value, field)
    if end and text == "24:00":
        return MINUTES_PER_DAY
    match = _CLOCK.match(text)
    if match is None:
        allowed = "HH:MM from 00:00 to 24:00" if end else "HH:MM from 00:00 to 23:59"
        raise SpecError(field, f"must be a time of day {allowed} (got {text!r})")
    return int(match.group(1)) * 60 + int(match.group(2))


def clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class DailyWindow:
    """Open on the ISO weekdays ``days`` (1 = Monday) from ``start`` to ``end`` minutes after local midnight.

    An end at or before the start wraps past midnight: the window opened on a listed day closes the next day.
    """

    days: frozenset[int]
    start: int
    end: int

    @property
    def wraps(self) -> bool:
        return self.end <= self.start

    def __str__(self) -> str:
        days = ",".join(str(day) for day in sorted(self.days))
        return f"days {days} {clock_text(self.start)}-{clock_text(self.end)}"


@dataclass(frozen=True)
class Schedule:
    """When a rule's alerts may open incidents; outside every window they are deferred or dropped."""

    zone: zoneinfo.ZoneInfo
    windows: tuple[DailyWindow, ...]
    outside: str = "Defer"

    @property
    def time_zone(self) -> str:
        return self.zone.key

    @classmethod
    def parse(cls, value: Mapping[str, Any], path: str) -> Schedule:
        zone = parse_time_zone(value.get("timeZone"), f"{path}.timeZone")
        windows = []
        for index, raw in enumerate(value.get("windows") or []):
            where = f"{path}.windows[{index}]"
            item = mapping(raw, where)
            days = item.get("days")
            if not isinstance(days, list) or not days or not all(isinstance(d, int) and 1 <= d <= 7 for d in days):
                raise SpecError(f"{where}.days", "must list ISO weekdays, 1 (Monday) to 7 (Sunday)")
            start = parse_clock(item.get("start"), f"{where}.start")
            end = parse_clock(item.get("end"), f"{where}.end", end=True)
            if start == end:
                raise SpecError(f"{where}.end", "must differ from start (a window open all day is 00:00 to 24:00)")
            windows.append(DailyWindow(frozenset(days), start, end))
        if not windows:
            raise SpecError(f"{path}.windows", "a schedule needs at least one window")
        outside = choice(value.get("outside"), f"{path}.outside", OUTSIDE_ACTIONS, "Defer")
        return cls(zone, tuple(windows), outside)
