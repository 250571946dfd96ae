"""Noise control offline: `route --at` says what would be held back and why; `validate` catches what schemas cannot."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from incidentio_operator.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
QUALITY = """
apiVersion: alerting.armor.dev/v1alpha1
kind: DataAlert
metadata: {name: events-nulls, namespace: data-platform}
spec:
  title: Null rate of analytics.events.user_id above 5%
  eventType: data_quality
  severity: warning
  asset: {qualifiedName: snowflake.prod_db.analytics.events, environment: production, schema: analytics, table: events}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    assert isinstance(exit_info.value.code, int)
    return exit_info.value.code, captured.out, captured.err


def test_route_at_a_night_time_explains_the_deferral(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alert = tmp_path / "alert.yaml"
    alert.write_text(QUALITY)
    code, out, _ = run(capsys, "route", "--dir", str(EXAMPLES), "--at", "2026-12-05T23:00:00Z", str(alert))
    assert code == 1
    assert (
        "  note:     Deferred until 2026-12-07T07:00:00Z (OutsideSchedule): rule analytics-quality-office-hours: "
        "outside its schedule (Europe/Berlin: days 1,2,3,4,5 08:00-18:00)"
    ) in out
    assert "cooldown 1h and maxIncidentsPerDay 20: they depend on the incidents already opened" in out
    assert out.splitlines()[-1] == "No destination would get an incident. Nothing was sent."
    # In office hours, but inside the warehouse migration blackout of examples/blackout.yaml.
    code, out, _ = run(capsys, "route", "--dir", str(EXAMPLES), "--at", "2026-12-24T10:00:00Z", str(alert))
    held = "Deferred until 2026-12-24T23:00:00Z (Blackout): blackout warehouse-migration (Warehouse migration and"
    assert code == 1 and held in out
    code, out, _ = run(capsys, "route", "--dir", str(EXAMPLES), "--at", "2026-12-07T09:00:00Z", str(alert))
    assert code == 0 and out.splitlines()[-1] == "1 destination would get an incident. Nothing was sent."


def test_route_refuses_a_time_it_cannot_read(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    alert = tmp_path / "alert.yaml"
    alert.write_text(QUALITY)
    code, _, err = run(capsys, "route", "--dir", str(EXAMPLES), "--at", "tomorrow", str(alert))
    assert code == 2 and "--at 'tomorrow' is not an RFC 3339 time" in err


def test_validate_names_an_unknown_time_zone(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    documents = list(yaml.safe_load_all((EXAMPLES / "blackout.yaml").read_text()))
    documents[0]["spec"]["timeZone"] = "Europe/Berln"
    rules = list(yaml.safe_load_all((EXAMPLES / "rules.yaml").read_text()))
    scheduled = next(rule for rule in rules if rule and "schedule" in rule["spec"])
    scheduled["spec"]["schedule"]["timeZone"] = "Mars/Olympus_Mons"
    (tmp_path / "blackout.yaml").write_text(yaml.safe_dump_all(documents))
    (tmp_path / "rule.yaml").write_text(yaml.safe_dump(scheduled))
    code, out, _ = run(capsys, "validate", str(tmp_path))
    assert code == 1
    assert "AlertBlackout data-platform/warehouse-migration: spec.timeZone: unknown time zone 'Europe/Berln'" in out
    assert "analytics-quality-office-hours: spec.schedule.timeZone: unknown time zone 'Mars/Olympus_Mons'" in out
