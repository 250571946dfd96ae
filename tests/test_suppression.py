"""Noise control, pure: schedule and blackout windows (DST, midnight wrap, OR), cooldowns, caps, snooze, classes."""

from __future__ import annotations

import datetime
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from incidentio_operator.api import AlertBlackout, AlertRule, DataAlert, ObjectRef, SpecError
from incidentio_operator.api.changes import BREAKING_CHANGE_TYPES, CHANGE_TYPE_NAMES, CHANGE_TYPES, class_matches
from incidentio_operator.controller.admissions import AdmissionLedger
from incidentio_operator.decisions.routing import rule_matches
from incidentio_operator.decisions.suppression import (
    Candidate,
    NoiseFacts,
    Reason,
    blackout_spans,
    evaluate,
    next_span,
    open_span,
    schedule_spans,
)

from .factories import DESTINATION, NAMESPACE, alert_body, rule_body

UTC = datetime.UTC
DEST = ObjectRef(NAMESPACE, DESTINATION)


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).astimezone(UTC)


def rule(name: str = "r", labels: dict[str, str] | None = None, **spec: Any) -> AlertRule:
    body = rule_body(name, **spec)
    body["metadata"]["labels"] = labels or {}
    parsed = AlertRule.from_body(body)
    assert parsed.spec is not None, parsed.spec_error
    return parsed


def blackout(name: str = "b", namespace: str = NAMESPACE, **spec: Any) -> AlertBlackout:
    body = {
        "apiVersion": "alerting.armor.dev/v1alpha1",
        "kind": "AlertBlackout",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"reason": "Warehouse migration", **spec},
    }
    parsed = AlertBlackout.from_body(body)
    assert parsed.spec is not None, parsed.spec_error
    return parsed


def schedule(*windows: dict[str, Any], zone: str = "Europe/Berlin", outside: str = "Defer") -> dict[str, Any]:
    return {"timeZone": zone, "windows": list(windows), "outside": outside}


def is_open(parsed: AlertRule, moment: str) -> bool:
    assert parsed.spec is not None and parsed.spec.schedule is not None
    instant = at(moment)
    return open_span(schedule_spans(parsed.spec.schedule, instant), instant) is not None


def verdict(
    rules: list[AlertRule],
    now: str,
    *,
    blackouts: tuple[AlertBlackout, ...] = (),
    history: AdmissionLedger | None = None,
    alert: DataAlert | None = None,
    epoch: int = 1,
) -> Any:
    alert = alert or DataAlert.from_body(alert_body())
    candidate = Candidate(alert, DEST, DESTINATION, epoch, tuple(r.ref.name for r in rules))
    facts = NoiseFacts({r.ref.name: r for r in rules}, blackouts, history or AdmissionLedger())
    return evaluate(candidate, facts, at(now))


# ---------------------------------------------------------------------------------------------- schedules

WEEKDAYS = {"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00"}
FRIDAY_NIGHT = {"days": [5], "start": "22:00", "end": "02:00"}


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-12-01T08:00:00+01:00", True),  # Tuesday, opens at 08:00 (included)
        ("2026-12-01T17:59:59+01:00", True),
        ("2026-12-01T18:00:00+01:00", False),  # closes at 18:00 (excluded)
        ("2026-12-01T07:59:59+01:00", False),
        ("2026-12-04T23:30:00+01:00", True),  # Friday night window (the OR of the two)
        ("2026-12-05T01:59:00+01:00", True),  # wrapped past midnight into Saturday
        ("2026-12-05T02:00:00+01:00", False),
        ("2026-12-05T23:30:00+01:00", False),  # Saturday night: day 6 is not listed
        ("2026-12-04T21:00:00+01:00", False),  # Friday between the windows
    ],
)
def test_windows_combine_with_or_and_wrap_past_midnight(moment: str, expected: bool) -> None:
    assert is_open(rule(schedule=schedule(WEEKDAYS, FRIDAY_NIGHT)), moment) is expected


def test_next_opening_skips_the_weekend() -> None:
    parsed = rule(schedule=schedule(WEEKDAYS))
    assert parsed.spec is not None and parsed.spec.schedule is not None
    saturday = at("2026-12-05T12:00:00+01:00")
    upcoming = next_span(schedule_spans(parsed.spec.schedule, saturday), saturday)
    assert upcoming is not None and upcoming.start == at("2026-12-07T08:00:00+01:00")


def test_touching_windows_are_one_opening() -> None:
    parsed = rule(schedule=schedule(WEEKDAYS, {"days": [2], "start": "18:00", "end": "24:00"}))
    assert parsed.spec is not None and parsed.spec.schedule is not None
    tuesday = at("2026-12-01T12:00:00+01:00")
    span = open_span(schedule_spans(parsed.spec.schedule, tuesday), tuesday)
    assert span is not None and span.end == at("2026-12-02T00:00:00+01:00")


def test_spring_forward_in_berlin() -> None:
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST. A window opening in the skipped hour opens with the
    # offset before the gap (RFC 5545 §3.3.5): 02:30 is 01:30 UTC, i.e. 03:30 CEST.
    parsed = rule(schedule=schedule({"days": [7], "start": "02:30", "end": "04:00"}))
    assert is_open(parsed, "2026-03-29T01:29:00+00:00") is False
    assert is_open(parsed, "2026-03-29T01:30:00+00:00") is True
    assert is_open(parsed, "2026-03-29T01:59:00+00:00") is True  # 03:59 CEST
    assert is_open(parsed, "2026-03-29T02:00:00+00:00") is False  # 04:00 CEST
    # A working day on the DST day is 08:00 to 18:00 of the new offset.
    sunday = rule(schedule=schedule({"days": [7], "start": "08:00", "end": "18:00"}))
    assert is_open(sunday, "2026-03-29T05:59:00+00:00") is False
    assert is_open(sunday, "2026-03-29T06:00:00+00:00") is True


def test_fall_back_in_berlin() -> None:
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:00-03:00 local happens twice. The window opens
    # at the first 02:30 (00:30 UTC) and closes at 03:30 CET (02:30 UTC): two hours long that night.
    parsed = rule(schedule=schedule({"days": [7], "start": "02:30", "end": "03:30"}))
    assert is_open(parsed, "2026-10-25T00:29:00+00:00") is False
    assert is_open(parsed, "2026-10-25T00:30:00+00:00") is True
    assert is_open(parsed, "2026-10-25T02:29:00+00:00") is True
    assert is_open(parsed, "2026-10-25T02:30:00+00:00") is False


def test_a_window_over_the_spring_forward_night_closes_at_its_new_offset() -> None:
    # Saturday 22:00 CET to Sunday 04:00 CEST (2026-03-29 02:00 CET jumps to 03:00 CEST): five hours, not six.
    parsed = rule(schedule=schedule({"days": [6], "start": "22:00", "end": "04:00"}))
    assert is_open(parsed, "2026-03-28T20:59:00+00:00") is False
    assert is_open(parsed, "2026-03-28T21:00:00+00:00") is True
    assert is_open(parsed, "2026-03-29T01:59:00+00:00") is True  # 03:59 CEST
    assert is_open(parsed, "2026-03-29T02:00:00+00:00") is False  # 04:00 CEST


def test_a_deferral_across_the_dst_change_opens_at_the_new_offset() -> None:
    daily = rule(schedule=schedule({"days": [1, 2, 3, 4, 5, 6, 7], "start": "08:00", "end": "18:00"}))
    # Saturday 19:00 CET: the next opening is Sunday 08:00 CEST, 06:00 UTC (07:00 UTC the day before).
    held = verdict([daily], "2026-03-28T18:00:00+00:00")
    assert held.deferred_until == at("2026-03-29T06:00:00+00:00")
    assert verdict([daily], "2026-03-28T07:00:00+00:00").deliver
    assert not verdict([daily], "2026-03-29T05:59:00+00:00").deliver
    assert verdict([daily], "2026-03-29T06:00:00+00:00").deliver


def test_schedules_asked_in_any_order_answer_for_their_own_zone_and_day() -> None:
    # The same windows in two zones, asked every 20 minutes over the two weeks around Berlin's spring-forward,
    # forwards and then backwards (so that each day is asked again after later days were): open exactly when
    # the local wall clock is inside, computed here from the zone alone.
    windows = ({"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00"},)
    zones = ("Europe/Berlin", "America/New_York")
    rules = {zone: rule(schedule=schedule(*windows, zone=zone)) for zone in zones}
    start = at("2026-03-22T00:00:00+00:00")
    moments = [start + datetime.timedelta(minutes=20 * step) for step in range(14 * 72)]
    for moment in [*moments, *reversed(moments)]:
        for zone, parsed in rules.items():
            local = moment.astimezone(zoneinfo.ZoneInfo(zone))
            expected = local.isoweekday() <= 5 and 8 <= local.hour < 18
            assert is_open(parsed, moment.isoformat()) is expected, (zone, moment)


def test_outside_the_schedule_defers_to_the_next_opening_or_drops() -> None:
    deferring = verdict([rule(schedule=schedule(WEEKDAYS))], "2026-12-05T12:00:00+01:00")
    assert not deferring.deliver
    assert deferring.leading.reason is Reason.OUTSIDE_SCHEDULE
    assert deferring.deferred_until == at("2026-12-07T08:00:00+01:00")
    assert "rule r: outside its schedule (Europe/Berlin: days 1,2,3,4,5 08:00-18:00)" in deferring.message
    dropping = verdict([rule(schedule=schedule(WEEKDAYS, outside="Drop"))], "2026-12-05T12:00:00+01:00")
    assert not dropping.deliver and dropping.deferred_until is None
    assert dropping.message.endswith("dropped (outside: Drop)")
    assert verdict([rule(schedule=schedule(WEEKDAYS))], "2026-12-07T09:00:00+01:00").deliver


def test_an_unknown_time_zone_names_the_field() -> None:
    body = rule_body(schedule=schedule(WEEKDAYS, zone="Europe/Berln"))
    parsed = AlertRule.from_body(body)
    assert parsed.spec is None and isinstance(parsed.spec_error, SpecError)
    assert parsed.spec_error.field == "spec.schedule.timeZone"
    assert "Europe/Berln" in parsed.spec_error.message


# ---------------------------------------------------------------------------------------------- blackouts

ONE_TIME = {"start": "2026-12-05T22:00:00Z", "end": "2026-12-06T06:00:00Z"}


def test_an_active_blackout_defers_to_its_end_or_drops() -> None:
    held = verdict([rule()], "2026-12-06T01:00:00Z", blackouts=(blackout(windows=[ONE_TIME]),))
    assert held.leading.reason is Reason.BLACKOUT and held.leading.blackout == "b"
    assert held.deferred_until == at("2026-12-06T06:00:00Z")
    assert "blackout b (Warehouse migration, 2026-12-05T22:00:00Z to 2026-12-06T06:00:00Z) holds rule r" in held.message
    dropped = verdict([rule()], "2026-12-06T01:00:00Z", blackouts=(blackout(windows=[ONE_TIME], after="Drop"),))
    assert dropped.deferred_until is None and not dropped.deliver
    assert verdict([rule()], "2026-12-06T06:00:00Z", blackouts=(blackout(windows=[ONE_TIME]),)).deliver


def test_a_blackout_holds_only_the_rules_it_selects() -> None:
    selective = blackout(windows=[ONE_TIME], ruleSelector={"matchLabels": {"tier": "analytics"}})
    analytics, payments = rule("analytics", {"tier": "analytics"}), rule("payments", {"tier": "payments"})
    assert not verdict([analytics], "2026-12-06T01:00:00Z", blackouts=(selective,)).deliver
    both = verdict([analytics, payments], "2026-12-06T01:00:00Z", blackouts=(selective,))
    assert both.deliver and both.admitted_by == ("payments",)


def test_a_blackout_over_several_days_holds_until_its_last_window_ends() -> None:
    # Three whole days in Berlin, written as three touching yearly windows: one hold, to the end of the third.
    holidays = blackout(
        timeZone="Europe/Berlin",
        windows=[{"yearly": {"month": 12, "day": day}, "start": "00:00", "end": "24:00"} for day in (24, 25, 26)],
    )
    for moment in ("2026-12-23T23:00:00Z", "2026-12-25T12:00:00Z", "2026-12-26T22:59:00Z"):
        held = verdict([rule()], moment, blackouts=(holidays,))
        assert held.deferred_until == at("2026-12-27T00:00:00+01:00"), moment
        assert "(Warehouse migration, 2026-12-23T23:00:00Z to 2026-12-26T23:00:00Z)" in held.message
    assert verdict([rule()], "2026-12-26T23:00:00Z", blackouts=(holidays,)).deliver
    assert verdict([rule()], "2026-12-23T22:59:00Z", blackouts=(holidays,)).deliver
    # A whole day on the night clocks fall back is 25 hours long.
    fall_back = blackout(
        timeZone="Europe/Berlin", windows=[{"yearly": {"month": 10, "day": 25}, "start": "00:00", "end": "24:00"}]
    )
    held = verdict([rule()], "2026-10-25T22:59:00Z", blackouts=(fall_back,))
    assert held.deferred_until == at("2026-10-25T23:00:00Z")
    assert "2026-10-24T22:00:00Z to 2026-10-25T23:00:00Z" in held.message


def test_of_several_open_blackouts_the_first_by_name_that_selects_the_rule_holds_it() -> None:
    window = {"start": "2026-12-05T00:00:00Z", "end": "2026-12-08T00:00:00Z"}
    later = {"start": "2026-12-05T00:00:00Z", "end": "2026-12-09T00:00:00Z"}
    blackouts = (
        blackout("c-freeze", windows=[later]),
        blackout("a-elsewhere", namespace="other-team", windows=[window]),
        blackout("b-analytics", windows=[window], ruleSelector={"matchLabels": {"tier": "analytics"}}),
        blackout("d-over", windows=[{"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}]),
    )
    analytics, payments = rule("analytics", {"tier": "analytics"}), rule("payments", {"tier": "payments"})
    held = verdict([analytics, payments], "2026-12-06T12:00:00Z", blackouts=blackouts)
    assert [(h.rule, h.blackout) for h in held.held] == [("analytics", "b-analytics"), ("payments", "c-freeze")]
    assert held.deferred_until == at("2026-12-08T00:00:00Z")
    # Once the blackouts are over (or before they start), none of them holds anything back.
    assert verdict([analytics, payments], "2026-12-09T00:00:00Z", blackouts=blackouts).deliver
    assert verdict([analytics], "2026-12-03T00:00:00Z", blackouts=blackouts).deliver


def test_yearly_windows_wrap_into_the_new_year_and_skip_missing_leap_days() -> None:
    new_year = blackout(
        timeZone="Europe/Berlin", windows=[{"yearly": {"month": 12, "day": 31}, "start": "18:00", "end": "02:00"}]
    )
    assert new_year.spec is not None
    inside = at("2027-01-01T01:30:00+01:00")
    span = open_span(blackout_spans(new_year.spec, inside), inside)
    assert span == open_span(blackout_spans(new_year.spec, inside), at("2026-12-31T18:00:00+01:00"))
    assert span is not None and span.end == at("2027-01-01T02:00:00+01:00")
    leap = blackout(windows=[{"yearly": {"month": 2, "day": 29}, "start": "00:00", "end": "24:00"}])
    assert leap.spec is not None
    upcoming = next_span(blackout_spans(leap.spec, at("2027-03-01T00:00:00Z")), at("2027-03-01T00:00:00Z"))
    assert upcoming is not None and upcoming.start == at("2028-02-29T00:00:00Z")


# ---------------------------------------------------------------------------------------------- cooldown and cap


def ledger_with(*admissions: tuple[str, str, str], rule_name: str = "r", asset: str = "6c1e0f4a") -> AdmissionLedger:
    """Admissions of alerts (name, openedAt, reference) by ``rule_name`` at the destination, for ``asset``."""
    ledger = AdmissionLedger()
    for index, (name, opened, reference) in enumerate(admissions):
        delivery = {
            "destination": DESTINATION,
            "rules": [rule_name],
            "epoch": 1,
            "state": "Closed",
            "attempts": 1,
            "incidentId": f"id-{index}",
            "reference": reference,
            "openedAt": opened,
        }
        body = alert_body(name, uid=f"uid-{name}", asset={"id": asset}, status={"deliveries": [delivery]})
        ledger.observe(DataAlert.from_body(body), at(opened))
    return ledger


def test_cooldown_suppresses_repeats_for_the_same_asset_in_favour_of_the_first_incident() -> None:
    history = ledger_with(("first", "2026-12-01T10:00:00Z", "INC-1"))
    cooling = rule(cooldown="10m")
    held = verdict([cooling], "2026-12-01T10:09:59Z", history=history)
    assert held.leading.reason is Reason.COOLDOWN and held.deferred_until is None
    assert held.leading.in_favour_of == "INC-1"
    assert "cooldown 10m: INC-1 opened at 2026-12-01T10:00:00Z" in held.message
    assert verdict([cooling], "2026-12-01T10:10:00Z", history=history).deliver
    other_asset = DataAlert.from_body(alert_body("other", uid="uid-other", asset={"id": "elsewhere"}))
    assert verdict([cooling], "2026-12-01T10:05:00Z", history=history, alert=other_asset).deliver


def test_a_deliverys_own_admission_never_counts_against_it() -> None:
    history = ledger_with(("orders-column-removed-7f3a", "2026-12-01T10:00:00Z", "INC-1"))
    alert = DataAlert.from_body(alert_body(uid="uid-orders-column-removed-7f3a"))
    assert verdict([rule(cooldown="10m")], "2026-12-01T10:05:00Z", history=history, alert=alert).deliver
    # Its next trigger epoch is a repeat, though: a flapping alert gets one incident.
    assert not verdict([rule(cooldown="10m")], "2026-12-01T10:05:00Z", history=history, alert=alert, epoch=2).deliver


def test_the_daily_cap_counts_the_rules_day_in_its_time_zone() -> None:
    opened = [(f"a{n}", f"2026-12-01T0{n}:00:00Z", f"INC-{n}") for n in range(1, 4)]
    history = ledger_with(*opened, asset="shared")
    capped = verdict([rule(maxIncidentsPerDay=3)], "2026-12-01T22:00:00Z", history=history)
    assert capped.leading.reason is Reason.DAILY_CAP
    assert "daily cap of 3 incident(s) reached (2026-12-01, UTC)" in capped.message
    assert verdict([rule(maxIncidentsPerDay=3)], "2026-12-02T00:00:00Z", history=history).deliver
    # In Tokyo (UTC+9) 2026-12-01T22:00Z is already 2 December: yesterday's incidents do not count.
    tokyo = rule(
        maxIncidentsPerDay=3,
        schedule=schedule({"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "24:00"}, zone="Asia/Tokyo"),
    )
    assert verdict([tokyo], "2026-12-01T22:00:00Z", history=history).deliver


def test_the_ledger_counts_a_rules_admissions_since_a_moment_without_the_asking_delivery_until_they_expire() -> None:
    opened = [(f"a{n}", f"2026-12-01T0{n}:00:00Z", f"INC-{n}") for n in range(1, 6)]
    history = ledger_with(*opened, ("late", "2026-12-01T05:00:00Z", "INC-9"), asset="shared")
    r, elsewhere = ObjectRef(NAMESPACE, "r"), ObjectRef("other-team", "r")
    nobody: tuple[str, str, int] = ("", "", 0)
    assert history.admitted_since(r, at("2026-12-01T00:00:00Z"), excluding=nobody) == 6
    assert history.admitted_since(r, at("2026-12-01T03:00:00Z"), excluding=nobody) == 4  # from 03:00 (included)
    assert history.admitted_since(r, at("2026-12-01T03:00:00Z"), excluding=("uid-late", DESTINATION, 1)) == 3
    # The asking delivery's own admission before the moment was never counted: nothing to take off.
    assert history.admitted_since(r, at("2026-12-01T03:00:00Z"), excluding=("uid-a1", DESTINATION, 1)) == 4
    assert history.admitted_since(ObjectRef(NAMESPACE, "other"), at("2026-12-01T00:00:00Z"), excluding=nobody) == 0
    assert history.admitted_since(elsewhere, at("2026-12-01T00:00:00Z"), excluding=nobody) == 0
    history.expire(at("2026-12-01T04:00:00Z"))
    assert history.admitted_since(r, at("2026-12-01T00:00:00Z"), excluding=nobody) == 3
    assert len(history) == 3
    history.expire(at("2026-12-02T00:00:00Z"))
    assert history.admitted_since(r, at("2026-12-01T00:00:00Z"), excluding=nobody) == 0


def test_expiring_forgets_cooldowns_and_counts_of_admissions_noted_out_of_time_order() -> None:
    # A restart lists alerts in name order, not in the order their incidents opened.
    opened = [("c", "2026-12-01T03:00:00Z", "INC-3"), ("a", "2026-12-01T01:00:00Z", "INC-1")]
    history = ledger_with(*opened, ("b", "2026-12-01T02:00:00Z", "INC-2"), asset="shared")
    r, nobody = ObjectRef(NAMESPACE, "r"), ("", "", 0)
    destination, subject = ObjectRef(NAMESPACE, DESTINATION), "shared"
    latest = history.last_admission(r, destination, subject, "schema_change", excluding=nobody)
    assert latest is not None and latest.reference == "INC-3"

    history.expire(at("2026-12-01T02:30:00Z"))
    assert len(history) == 1
    assert history.admitted_since(r, at("2026-12-01T00:00:00Z"), excluding=nobody) == 1
    latest = history.last_admission(r, destination, subject, "schema_change", excluding=nobody)
    assert latest is not None and latest.reference == "INC-3"
    history.expire(at("2026-12-01T03:00:01Z"))
    assert history.last_admission(r, destination, subject, "schema_change", excluding=nobody) is None
    assert (len(history), history.admitted_since(r, at("2026-12-01T00:00:00Z"), excluding=nobody)) == (0, 0)


def test_the_daily_cap_counts_from_local_midnight_on_a_dst_day() -> None:
    # Berlin's 29 March 2026 begins at 23:00 UTC the day before (CET) and ends at 22:00 UTC (CEST): 23 hours.
    berlin = rule(
        maxIncidentsPerDay=1,
        schedule=schedule({"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "24:00"}),
    )
    before_midnight = ledger_with(("late", "2026-03-28T22:59:00Z", "INC-1"), asset="shared")
    assert verdict([berlin], "2026-03-29T21:59:00Z", history=before_midnight).deliver
    after_midnight = ledger_with(("early", "2026-03-28T23:00:00Z", "INC-1"), asset="shared")
    capped = verdict([berlin], "2026-03-29T21:59:00Z", history=after_midnight)
    assert capped.leading.reason is Reason.DAILY_CAP
    assert "(2026-03-29, Europe/Berlin)" in capped.message
    assert verdict([berlin], "2026-03-29T22:00:00Z", history=after_midnight).deliver


def test_any_rule_that_lets_the_alert_through_delivers_it() -> None:
    history = ledger_with(("first", "2026-12-01T10:00:00Z", "INC-1"), rule_name="cooling")
    result = verdict([rule("cooling", cooldown="1h"), rule("plain")], "2026-12-01T10:05:00Z", history=history)
    assert result.deliver and result.admitted_by == ("plain",)


def test_a_snooze_defers_every_rule_until_it_ends() -> None:
    snoozed = DataAlert.from_body(alert_body(state="snoozed", snoozedUntil="2026-12-01T12:00:00Z"))
    held = verdict([rule("a"), rule("b")], "2026-12-01T11:00:00Z", alert=snoozed)
    assert held.leading.reason is Reason.SNOOZED and held.deferred_until == at("2026-12-01T12:00:00Z")
    assert held.rules == ("a", "b")
    assert verdict([rule("a")], "2026-12-01T12:00:00Z", alert=snoozed).deliver
    # Snoozed without an end, or snoozedUntil in another state: nothing held back (as before this feature).
    plain = DataAlert.from_body(alert_body(state="snoozed"))
    assert verdict([rule("a")], "2026-12-01T11:00:00Z", alert=plain).deliver


# ---------------------------------------------------------------------------------------------- change classes


def test_the_breaking_table_is_one_closed_vocabulary() -> None:
    assert BREAKING_CHANGE_TYPES < set(CHANGE_TYPE_NAMES)
    assert {"column_removed", "column_type_changed", "table_removed", "primary_key_removed"} <= BREAKING_CHANGE_TYPES
    assert "column_added" not in BREAKING_CHANGE_TYPES


@pytest.mark.parametrize(
    ("change_class", "types", "matches"),
    [
        ("Any", [], True),
        ("Breaking", ["column_added", "column_removed"], True),
        ("Breaking", ["column_added"], False),
        ("Breaking", [], False),
        ("NonBreaking", ["column_added", "index_added"], True),
        ("NonBreaking", ["column_added", "column_removed"], False),
        ("NonBreaking", [], False),
    ],
)
def test_change_classes(change_class: str, types: list[str], matches: bool) -> None:
    assert class_matches(change_class, types) is matches
    parsed = rule(conditions={"changeClass": change_class})
    alert = DataAlert.from_body(alert_body(changes=[{"type": name} for name in types]))
    assert parsed.spec is not None and alert.spec is not None
    assert rule_matches(parsed.spec, alert.spec, {}) is matches


def test_the_readme_documents_the_breaking_table_as_the_code_has_it() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for change in CHANGE_TYPES:
        kind = "**breaking**" if change.breaking else "non-breaking"
        assert f"| `{change.name}` | {change.category} | {kind} | {change.meaning} |" in readme
    crd = (Path(__file__).resolve().parents[1] / "crds" / "dataalerts.yaml").read_text()
    assert "enum: [" + ", ".join(CHANGE_TYPE_NAMES) + "]" in crd
