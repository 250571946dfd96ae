"""The heartbeat's judgement of the operator's health, and the status a beat leaves."""

from __future__ import annotations

import pytest

from incidentio_operator.decisions.heartbeat import Verdict, Vitals, heartbeat_status, judge


def test_a_live_draining_operator_pings() -> None:
    assert judge(Vitals(3.0, True, 0, 0)) == Verdict("", True)
    assert judge(Vitals(3.0, True, 4, 2)) == Verdict("", True)


@pytest.mark.parametrize(
    ("vitals", "said", "may_write"),
    [
        (Vitals(None, None, 0, 0), "no watch event received yet", False),
        (Vitals(2.0, None, 0, 0), "first beat", True),
        (Vitals(21.0, False, 0, 0), "no watch event since the last beat (21s): the watches are down", True),
        (Vitals(1.0, True, 3, 0), "the work queue is not draining: 3 object(s) waiting", True),
        (Vitals(1.0, True, 0, 0, "HTTP 500"), "the last status write failed: HTTP 500", True),
        # No echo came of a write that failed: it is tried again rather than taken for dead watches.
        (Vitals(12.0, False, 0, 0, "HTTP 500"), "the last status write failed: HTTP 500", True),
    ],
    ids=["standby", "first-beat", "watches-down", "queue-stuck", "write-failed", "write-failed-no-echo"],
)
def test_an_unhealthy_operator_lets_the_heartbeat_lapse(vitals: Vitals, said: str, may_write: bool) -> None:
    verdict = judge(vitals)
    assert said in verdict.why_not
    assert verdict.may_write is may_write


def test_the_status_keeps_the_last_ping_when_a_beat_skips() -> None:
    skipped = heartbeat_status("01HB", "2026-12-01T03:00:10Z", "Skipped", "why", "2026-12-01T03:00:00Z")
    assert skipped == {
        "alertSourceConfigId": "01HB",
        "checkedAt": "2026-12-01T03:00:10Z",
        "result": "Skipped",
        "message": "why",
        "lastPingAt": "2026-12-01T03:00:00Z",
    }
    assert "lastPingAt" not in heartbeat_status("01HB", "2026-12-01T03:00:10Z", "Failed", "refused")
