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
