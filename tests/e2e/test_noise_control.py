"""Noise control through the real operator (issue 12): classes, schedules, blackouts, cooldown, cap, snooze, visibility.

Time: blackouts and snoozes are set relative to the real clock (one-time windows and snoozes have second
precision); schedules (HH:MM) use the operator's test-only ``--clock-offset`` to stand a few seconds before
a minute boundary. Nothing sleeps for a fixed time: every wait polls with a bound.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import pytest

from incidentio_operator.api import format_time
from tests.e2e import objects as o
from tests.e2e.test_observability import free_port, scrape
from tests.harness import DEMO_KEY, GROUP_VERSION, Environment, put_at_once, wait_for

DESTINATIONS, RULES, ALERTS, BLACKOUTS = "incidentiodestinations", "alertrules", "dataalerts", "alertblackouts"
NS = o.NS
FAST = ("--sweep-interval", "2")
UTC = datetime.UTC


def setup_destination(env: Environment) -> None:
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    env.client.apply(o.destination(env.sim.url))
    env.wait_ready(DESTINATIONS, NS, "incidentio")


def creates(env: Environment) -> list[Any]:
    return [r for r in env.requests("create_incident") if (r.body or {}).get("mode") != "test" and r.status == 200]


def deliveries(env: Environment, name: str) -> list[dict[str, Any]]:
    return list(env.status(ALERTS, NS, name).get("deliveries") or [])


def current(env: Environment, name: str) -> dict[str, Any]:
    """The delivery of the alert's current epoch, once its status describes the current generation."""
    body = env.get(ALERTS, NS, name) or {}
    status = body.get("status") or {}
    if status.get("observedGeneration") != body["metadata"].get("generation"):
        return {}
    found = [d for d in status.get("deliveries") or () if d["epoch"] == status.get("epoch")]
    return dict(found[0]) if len(found) == 1 else {}


def wait_state(env: Environment, name: str, state: str, *, timeout: float = 30.0) -> dict[str, Any]:
    return wait_for(
        lambda: (d := current(env, name)) and d.get("state") == state and d,
        timeout=timeout,
        what=f"{name} delivery {state} (now {current(env, name)})",
    )


def blackout(name: str, start: datetime.datetime, end: datetime.datetime, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "AlertBlackout",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "reason": "Warehouse migration",
            "windows": [{"start": format_time(start), "end": format_time(end)}],
            **spec,
        },
    }


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def events(env: Environment, kind: str, name: str) -> list[dict[str, Any]]:
    return [
        e for e in env.client.events(NS) if e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"] == name
    ]


# ---------------------------------------------------------------------------------------------- 1. change classes


def test_a_breaking_rule_pages_for_breaking_changes_only(env: Environment) -> None:
    env.start_operator(*FAST)
    setup_destination(env)
    env.client.apply(o.rule("breaking", ["incidentio"], conditions={"changeClass": "Breaking"}))
    added, removed = o.alert("added"), o.alert("removed")
    added["spec"]["changes"] = [{"type": "column_added", "column": "note"}]
    removed["spec"]["changes"] = [{"type": "column_added", "column": "note"}, {"type": "table_removed"}]
    env.client.apply(added)
    env.client.apply(removed)
    wait_state(env, "removed", "Open")
    env.wait_reason(ALERTS, NS, "added", "NoMatchingRule")
    assert len(creates(env)) == 1


# ---------------------------------------------------------------------------------------------- 2. schedules


def test_outside_the_schedule_drop_suppresses_and_a_resolve_calls_nothing(env: Environment) -> None:
    env.start_operator(*FAST)
    setup_destination(env)
    closed_day = (now() + datetime.timedelta(days=3)).isoweekday()
    schedule = {
        "timeZone": "UTC",
        "outside": "Drop",
        "windows": [{"days": [closed_day], "start": "00:00", "end": "24:00"}],
    }
    env.client.apply(o.rule("office-hours", ["incidentio"], schedule=schedule))
    env.client.apply(o.alert("orders"))
    held = wait_state(env, "orders", "Suppressed")
    assert held["reason"] == "OutsideSchedule" and "dropped (outside: Drop)" in held["message"]
    condition = env.wait_reason(ALERTS, NS, "orders", "Suppressed")
    assert condition["status"] == "True" and "rule office-hours: outside its schedule" in condition["message"]
    env.client.patch(o.GV, ALERTS, NS, "orders", {"spec": {"state": "resolved"}})
    env.wait_reason(ALERTS, NS, "orders", "Resolved")
    assert creates(env) == [] and env.requests("edit_incident") == []


@pytest.mark.timeout(150)
def test_outside_the_schedule_defer_delivers_when_the_window_opens(env: Environment) -> None:
    # The operator's clock stands 20 s before a minute boundary when it starts, so the window opening at the
    # next boundary comes within seconds (or, on a slow machine, a minute later), not hours.
    real = now()
    boundary = (real + datetime.timedelta(seconds=80)).replace(second=0, microsecond=0)
    offset = (boundary - datetime.timedelta(seconds=20) - real).total_seconds()
    env.start_operator(*FAST, "--clock-offset", f"{offset:.3f}")
    setup_destination(env)
    operator_now = now() + datetime.timedelta(seconds=offset)
    opens = datetime.datetime.fromtimestamp(math.ceil((operator_now.timestamp() + 5) / 60) * 60, UTC)
    closes = opens + datetime.timedelta(minutes=5)
    window = {"days": [opens.isoweekday()], "start": opens.strftime("%H:%M"), "end": closes.strftime("%H:%M")}
    env.client.apply(o.rule("office-hours", ["incidentio"], schedule={"timeZone": "UTC", "windows": [window]}))
    env.client.apply(o.alert("orders"))
    deferred = wait_state(env, "orders", "Deferred")
    assert deferred["reason"] == "OutsideSchedule" and deferred["reevaluateAt"] == format_time(opens)
    assert env.wait_reason(ALERTS, NS, "orders", "Deferred")["status"] == "True"
    assert creates(env) == []
    opened = wait_state(env, "orders", "Open", timeout=100)
    assert len(creates(env)) == 1 and opened["reference"]


# ---------------------------------------------------------------------------------------------- 3. blackouts


@pytest.mark.timeout(180)
def test_a_blackout_over_a_burst_opens_none_then_delivers_the_still_triggered_once_each(env: Environment) -> None:
    env.start_operator(*FAST)
    setup_destination(env)
    env.client.apply(o.rule("all", ["incidentio"]))
    env.client.apply(blackout("migration", now() - datetime.timedelta(minutes=1), now() + datetime.timedelta(hours=1)))
    status = wait_for(lambda: (s := env.status(BLACKOUTS, NS, "migration")) and s.get("active") and s, what="active")
    assert status["rules"] == ["all"] and "nextWindow" not in status and status["currentWindow"]["end"]
    names = [f"burst-{n:02d}" for n in range(50)]
    put_at_once(env, [o.alert(name) for name in names])
    for name in names:
        held = wait_state(env, name, "Deferred", timeout=60)
        assert held["reason"] == "Blackout" and "blackout migration (Warehouse migration" in held["message"]
    resolved = names[:10]
    for name in resolved:
        env.client.patch(o.GV, ALERTS, NS, name, {"spec": {"state": "resolved"}})
    for name in resolved:
        env.wait_reason(ALERTS, NS, name, "Resolved")
    assert creates(env) == []
    wait_for(lambda: env.status(BLACKOUTS, NS, "migration").get("suppressedAlerts") == 50, what="50 counted")

    env.client.delete(o.GV, BLACKOUTS, NS, "migration")  # the migration is over early
    for name in names[10:]:
        wait_state(env, name, "Open", timeout=60)
    for name in resolved:
        (only,) = deliveries(env, name)
        assert only["state"] == "Suppressed" and "never delivered" in only["message"]
    keys = [r.body["idempotency_key"] for r in creates(env)]
    assert len(keys) == 40 and len(set(keys)) == 40
    assert len(env.incidents()) == 40


def test_a_dropping_blackout_that_ends_on_its_own_drops_what_came_during_it(env: Environment) -> None:
    env.start_operator(*FAST)
    setup_destination(env)
    env.client.apply(o.rule("all", ["incidentio"]))
    ends = now() + datetime.timedelta(seconds=6)
    env.client.apply(blackout("freeze", now() - datetime.timedelta(minutes=1), ends, after="Drop"))
    env.client.apply(o.alert("during"))
    assert wait_state(env, "during", "Suppressed")["reason"] == "Blackout"
    wait_for(lambda: env.status(BLACKOUTS, NS, "freeze").get("active") is False, timeout=30, what="the window over")
    assert env.condition(BLACKOUTS, NS, "freeze")["reason"] == "Expired"
    env.client.apply(o.alert("after"))
    wait_state(env, "after", "Open")
    assert current(env, "during")["state"] == "Suppressed"
    assert len(creates(env)) == 1


# ---------------------------------------------------------------------------------------------- 4. cooldown


def test_an_alert_flapping_five_times_in_a_second_opens_one_incident(env: Environment) -> None:
    env.start_operator(*FAST)
    setup_destination(env)
    env.client.apply(o.rule("all", ["incidentio"], cooldown="10m"))
    env.client.apply(o.alert("flappy"))
    for _ in range(5):
        env.client.patch(o.GV, ALERTS, NS, "flappy", {"spec": {"state": "resolved"}})
        env.client.patch(o.GV, ALERTS, NS, "flappy", {"spec": {"state": "triggered"}})
    # However many of the flaps the operator saw (it may coalesce them), one incident opened.
    settled = wait_for(
        lambda: (d := current(env, "flappy")) and d["state"] in ("Open", "Suppressed") and d,
        what="flappy settled",
    )
    (incident,) = env.incidents()
    assert settled.get("reference", settled.get("inFavourOf")) == incident["reference"]
    # A flap the operator certainly sees: resolved (the incident closes), triggered again within the cooldown.
    env.client.patch(o.GV, ALERTS, NS, "flappy", {"spec": {"state": "resolved"}})
    env.wait_reason(ALERTS, NS, "flappy", "Closed")
    env.client.patch(o.GV, ALERTS, NS, "flappy", {"spec": {"state": "triggered"}})
    held = wait_state(env, "flappy", "Suppressed")
    assert (held["reason"], held["inFavourOf"]) == ("Cooldown", incident["reference"])
    assert "suppressed in favour of it" in held["message"] and incident["reference"] in held["message"]
    assert env.wait_reason(ALERTS, NS, "flappy", "Suppressed")["status"] == "True"
    # Another alert about the same table and event type gives way to the same incident.
    same = o.alert("flappy-again")
    same["spec"]["asset"]["id"] = "asset-flappy"
    env.client.apply(same)
    assert wait_state(env, "flappy-again", "Suppressed")["inFavourOf"] == incident["reference"]
    assert len(creates(env)) == 1


# ---------------------------------------------------------------------------------------------- 5. daily cap


@pytest.mark.timeout(120)
def test_a_daily_cap_of_three_with_ten_alerts_opens_three_and_warns_once(env: Environment) -> None:
    port = free_port()
    env.start_operator(*FAST, "--metrics-port", str(port))
    setup_destination(env)
    env.client.apply(o.rule("capped", ["incidentio"], maxIncidentsPerDay=3))
    names = [f"cap-{n}" for n in range(10)]
    put_at_once(env, [o.alert(name) for name in names])
    settled = ("Open", "Suppressed")
    states = wait_for(
        lambda: (
            (found := sorted(str(current(env, name).get("state")) for name in names))
            and all(state in settled for state in found)
            and found
        ),
        what="every alert settled",
    )
    assert states.count("Open") == 3 and states.count("Suppressed") == 7
    assert len(creates(env)) == 3
    today = wait_for(
        lambda: (
            (t := env.status(RULES, NS, "capped").get("today")) and t.get("suppressed", {}).get("DailyCap") == 7 and t
        ),
        what="the rule's count of today",
    )
    assert (today["incidentsOpened"], today["capReached"], today["timeZone"]) == (3, True, "UTC")
    warnings = wait_for(
        lambda: [e for e in events(env, "AlertRule", "capped") if e["type"] == "Warning"], what="Warning"
    )
    assert [e["reason"] for e in warnings] == ["DailyCapReached"]
    samples = wait_for(
        lambda: (s := scrape(port)).get('incidentio_operator_suppressions_total{reason="DailyCap"}') and s
    )
    assert samples['incidentio_operator_suppressions_total{reason="DailyCap"}'] == 7


def test_the_cap_and_a_due_deferral_survive_a_restart(env: Environment) -> None:
    first = env.start_operator(*FAST)
    setup_destination(env)
    env.client.apply(o.rule("capped", ["incidentio"], maxIncidentsPerDay=1))
    env.client.apply(o.rule("waiting", ["incidentio"], eventTypes=["freshness_violation"]))
    env.client.apply(o.alert("one"))
    wait_state(env, "one", "Open")
    ends = now() + datetime.timedelta(seconds=5)
    env.client.apply(blackout("short", now() - datetime.timedelta(minutes=1), ends, ruleSelector={}))
    env.client.apply(o.alert("stale", event_type="freshness_violation"))
    assert wait_state(env, "stale", "Deferred")["reevaluateAt"] == format_time(ends)
    first.kill()
    wait_for(lambda: now() > ends + datetime.timedelta(seconds=1), timeout=30, what="the blackout over, operator down")
    env.start_operator(*FAST)
    wait_state(env, "stale", "Open")  # due while the operator was down: delivered on the next look
    env.client.apply(o.alert("two"))
    assert wait_state(env, "two", "Suppressed")["reason"] == "DailyCap"
    assert len(creates(env)) == 2


# ---------------------------------------------------------------------------------------------- 6. snooze


def test_a_snooze_holds_new_incidents_until_it_ends_and_leaves_open_ones_open(env: Environment) -> None:
    env.start_operator(*FAST)
    setup_destination(env)
    env.client.apply(o.rule("all", ["incidentio"]))
    env.client.apply(o.alert("open-one"))
    wait_state(env, "open-one", "Open")
    until = format_time(now() + datetime.timedelta(seconds=5))
    env.client.patch(o.GV, ALERTS, NS, "open-one", {"spec": {"state": "snoozed", "snoozedUntil": until}})
    snoozed = o.alert("snoozed", state="snoozed")
    snoozed["spec"]["snoozedUntil"] = until
    env.client.apply(snoozed)
    held = wait_state(env, "snoozed", "Deferred")
    assert (held["reason"], held["reevaluateAt"]) == ("Snoozed", until)
    assert wait_state(env, "open-one", "Open")["attempts"] == 1
    wait_state(env, "snoozed", "Open", timeout=40)
    assert len(creates(env)) == 2 and env.requests("edit_incident") == []


# ---------------------------------------------------------------------------------------------- 7 and 8


def test_several_rules_deliver_if_any_lets_through_and_every_hold_is_visible(env: Environment) -> None:
    env.start_operator(*FAST)
    setup_destination(env)
    closed_day = (now() + datetime.timedelta(days=3)).isoweekday()
    schedule = {"outside": "Drop", "windows": [{"days": [closed_day], "start": "00:00", "end": "24:00"}]}
    env.client.apply(o.rule("night-shift", ["incidentio"], schedule=schedule))
    env.client.apply(o.rule("catch-all", ["incidentio"]))
    env.client.apply(o.alert("orders"))
    delivered = wait_state(env, "orders", "Open")
    assert delivered["rules"] == ["catch-all", "night-shift"] and delivered["admittedBy"] == ["catch-all"]
    env.client.delete(o.GV, RULES, NS, "catch-all")
    env.client.apply(o.alert("later"))
    wait_state(env, "later", "Suppressed")
    found = wait_for(lambda: [e for e in events(env, "DataAlert", "later") if e["reason"] == "IncidentSuppressed"])
    assert found[0]["type"] == "Normal" and "rule night-shift: outside its schedule" in found[0]["message"]
    today = wait_for(lambda: env.status(RULES, NS, "night-shift").get("today", {}).get("suppressed"), what="count")
    assert today == {"OutsideSchedule": 1}
    assert len(creates(env)) == 1
