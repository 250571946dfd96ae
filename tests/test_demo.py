"""`incidentio-operator demo`, as a newcomer runs it: a real process, exit 0, the story told in its output."""

from __future__ import annotations

import subprocess
import sys


def test_demo_walks_through_the_alert_lifecycle_and_exits_cleanly() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "incidentio_operator", "demo", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "incidentio-data-platform   True    Verified" in out
    assert "orders-column-removed   triggered   schema_change         critical   INC-2      True" in out
    assert "orders-column-removed   resolved    schema_change         critical   INC-2      True" in out
    assert "INC-2       [AnomalyArmor] Column customer_id removed from orders              Closed (closed)" in out
    assert "Rules: critical-production-sla, production-breaking-changes" in out
    assert "incident.io calls: 2 create(s), 1 close(s)" in out
    assert "delivery: Suppressed (Cooldown), in favour of INC-1: rule critical-production-sla: cooldown 30m" in out
    assert "incident.io calls: still 2 create(s)" in out
    assert "sim-demo-key" not in out + result.stderr
    assert "demo finished in" in out


def test_demo_in_alert_event_mode_fires_and_resolves_one_alert() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "incidentio_operator", "demo", "--port", "0", "--mode", "alert-event"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "incidentio-alert-events   True    Verified   AlertEvent" in out
    assert "delivery: AlertEvent, Firing, deduplication key armor-" in out
    assert ": resolved, 2 event(s), title '[AnomalyArmor] Column customer_id removed from orders'" in out
    assert "alert events received: firing, resolved; no incident opened by the operator itself." in out
    assert "sim-alert-source-token" not in out + result.stderr
    assert "demo finished in" in out
