"""`incidentio-operator route`: the rules, destinations and incidents an alert would reach, nothing sent."""

from __future__ import annotations

import io
import json
import pathlib
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import yaml

from incidentio_operator.api import AlertRule, AlertRuleSpec, DataAlert, DataAlertSpec
from incidentio_operator.cli import main
from incidentio_operator.commands.route import explain_mismatch
from incidentio_operator.decisions.routing import rule_matches

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ORDERS = EXAMPLES / "alerts/orders-column-removed.yaml"
DEV = EXAMPLES / "alerts/dev-column-removed.yaml"
FRESHNESS = EXAMPLES / "alerts/events-freshness.yaml"
BOTH_RULES = "critical-production-sla, production-breaking-changes"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["route", *argv])
    code = exit_info.value.code
    assert isinstance(code, int)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_alert_both_rules_match_gets_one_incident_naming_both(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--dir", str(EXAMPLES), str(ORDERS))
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == [
        "DataAlert data-platform/orders-column-removed: schema_change, severity critical, state triggered",
        f"Matching rules: {BOTH_RULES}",
    ]
    assert f"IncidentIoDestination data-platform/incidentio-data-platform (rules: {BOTH_RULES})" in lines
    assert "  name:     [AnomalyArmor] Column customer_id removed from orders" in lines
    assert "  severity: Critical (spec.incident.severity.map.critical)" in lines
    assert "  mode:     standard, visibility public" in lines
    assert f"    Rules: {BOTH_RULES}" in lines
    assert "    Kubernetes: kubectl -n data-platform get dataalert orders-column-removed" in lines
    assert lines[-1] == "1 destination would get an incident. Nothing was sent."


def test_json_output_holds_the_incident_as_it_would_be_sent(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--dir", str(EXAMPLES), "--output", "json", str(ORDERS))
    report = json.loads(out)
    assert code == 0
    assert report["matchedRules"] == ["critical-production-sla", "production-breaking-changes"]
    [delivery] = report["deliveries"]
    assert delivery["destination"] == {"namespace": "data-platform", "name": "incidentio-data-platform"}
    assert delivery["rules"] == ["critical-production-sla", "production-breaking-changes"]
    assert (delivery["declared"], delivery["sent"]) == (True, True)
    incident = delivery["incident"]
    assert incident["name"] == "[AnomalyArmor] Column customer_id removed from orders"
    assert incident["severity"] == "Critical"
    assert incident["summary"].startswith("The column customer_id disappeared from sales.orders")
    assert f"Rules: {BOTH_RULES}" in incident["summary"]


def test_an_alert_one_rule_matches_explains_the_other(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--dir", str(EXAMPLES), str(FRESHNESS))
    assert code == 0
    assert "Matching rules: critical-production-sla" in out
    assert (
        '  production-breaking-changes: spec.eventTypes: event type "freshness_violation" is not in [schema_change]'
    ) in out.splitlines()


def test_no_match_exits_one_and_says_why_per_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--dir", str(EXAMPLES), str(DEV))
    assert code == 1
    assert out.splitlines() == [
        "DataAlert data-platform/dev-column-removed: schema_change, severity critical, state triggered",
        "",
        "No rule matches. Why:",
        '  analytics-quality-office-hours: spec.eventTypes: event type "schema_change" is not in [data_quality]',
        '  critical-production-sla: spec.scope.environments: environment "development" matches none of [production]',
        '  production-breaking-changes: spec.scope.environments: environment "development" matches none of '
        "[production]",
        "",
        "No destination would get an incident. Nothing was sent.",
    ]


def test_the_alert_can_come_from_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(ORDERS.read_text()))
    code, out, _ = run(capsys, "--dir", str(EXAMPLES), "-")
    assert code == 0
    assert f"Matching rules: {BOTH_RULES}" in out


def test_an_invalid_alert_prints_the_schema_problems(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = yaml.safe_load(ORDERS.read_text())
    body["spec"]["severity"] = "urgent"
    del body["spec"]["title"]
    alert = tmp_path / "alert.yaml"
    alert.write_text(yaml.safe_dump(body))
    code, out, err = run(capsys, "--dir", str(EXAMPLES), str(alert))
    assert (code, out) == (2, "")
    assert "the API server would refuse this DataAlert" in err
    assert "spec.title: Required value" in err
    assert 'spec.severity: Unsupported value: "urgent"' in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: [\n", "YAML syntax error"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "expected exactly one DataAlert"),
    ],
)
def test_an_unusable_alert_file_exits_two(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    alert = tmp_path / "alert.yaml"
    alert.write_text(content)
    code, _, err = run(capsys, "--dir", str(EXAMPLES), str(alert))
    assert code == 2
    assert message in err


def test_a_missing_alert_file_exits_two(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--dir", str(EXAMPLES), str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "cannot read" in err


def test_a_destination_outside_the_folder_is_shown_with_defaults(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules.yaml").write_text((EXAMPLES / "rules.yaml").read_text())
    code, out, _ = run(capsys, "--dir", str(tmp_path), str(ORDERS))
    assert code == 0
    assert "  note:     not declared in the given folders: shown with the default incident settings" in out
    assert "  severity: not set (incident.io's default)" in out


def test_a_suspended_destination_gets_nothing(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rules.yaml").write_text((EXAMPLES / "rules.yaml").read_text())
    destination = yaml.safe_load((EXAMPLES / "destination.yaml").read_text())
    destination["spec"]["suspend"] = True
    (tmp_path / "destination.yaml").write_text(yaml.safe_dump(destination))
    code, out, _ = run(capsys, "--dir", str(tmp_path), str(ORDERS))
    assert code == 1
    assert "suspended (spec.suspend: true): nothing would be sent" in out


def test_cross_namespace_references_are_refused_unless_allowed(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = {
        "apiVersion": "alerting.armor.dev/v1alpha1",
        "kind": "AlertRule",
        "metadata": {"name": "everything", "namespace": "data-platform"},
        "spec": {"destinations": [{"name": "shared", "namespace": "sre"}]},
    }
    (tmp_path / "rule.yaml").write_text(yaml.safe_dump(rule))
    code, out, _ = run(capsys, "--dir", str(tmp_path), str(ORDERS))
    assert code == 1
    assert "refused: rule everything names sre/shared: cross-namespace destinations are disabled" in out
    code, out, _ = run(capsys, "--dir", str(tmp_path), "--allow-cross-namespace", str(ORDERS))
    assert code == 0
    assert "IncidentIoDestination sre/shared (rules: everything)" in out


def alert_spec(**overrides: Any) -> DataAlertSpec:
    body = yaml.safe_load(ORDERS.read_text())["spec"]
    body.update(overrides)
    return DataAlertSpec.parse(body)


def rule_spec(text: str) -> AlertRuleSpec:
    return AlertRuleSpec.parse(yaml.safe_load(textwrap.dedent(text)))


@pytest.mark.parametrize(
    ("rule", "labels", "expected"),
    [
        ("{suspend: true, destinations: [{name: d}]}", {}, "spec.suspend: the rule is suspended"),
        (
            "{severities: [info], destinations: [{name: d}]}",
            {},
            'spec.severities: severity "critical" is not in [info]',
        ),
        (
            "{scope: {databases: ['dev_*']}, destinations: [{name: d}]}",
            {},
            'spec.scope.databases: database "prod_db" matches none of [dev_*]',
        ),
        (
            "{scope: {schemas: {exclude: ['sal*']}}, destinations: [{name: d}]}",
            {},
            'spec.scope.schemas.exclude: schema "sales" is excluded by "sal*"',
        ),
        (
            "{scope: {tables: {include: [customers]}}, destinations: [{name: d}]}",
            {},
            'spec.scope.tables.include: table "orders" matches none of [customers]',
        ),
        (
            "{scope: {assetSelector: {matchLabels: {team: payments}}}, destinations: [{name: d}]}",
            {"team": "analytics"},
            'spec.scope.assetSelector.matchLabels.team: wants "payments", the alert\'s label is "analytics"',
        ),
        (
            "{scope: {assetSelector: {matchExpressions: [{key: tier, operator: Exists}]}}, destinations: [{name: d}]}",
            {},
            "spec.scope.assetSelector.matchExpressions[0]: wants tier Exists, the alert's label is not set",
        ),
        (
            "{conditions: {changeTypes: [column_added]}, destinations: [{name: d}]}",
            {},
            "spec.conditions.changeTypes: no change of type [column_added] (the alert's: [column_removed])",
        ),
        ("{eventTypes: [schema_change], destinations: [{name: d}]}", {}, None),
    ],
)
def test_explain_mismatch_names_the_first_field_that_fails(
    rule: str, labels: dict[str, str], expected: str | None
) -> None:
    spec = rule_spec(rule)
    assert explain_mismatch(spec, alert_spec(), labels) == expected
    # The explanation and the router must never disagree on whether a rule matches.
    assert (expected is None) == rule_matches(spec, alert_spec(), labels)


def test_explain_mismatch_agrees_with_routing_on_every_example() -> None:
    rules = [AlertRule.from_body(document) for document in yaml.safe_load_all((EXAMPLES / "rules.yaml").read_text())]
    for path in sorted((EXAMPLES / "alerts").glob("*.yaml")):
        alert = DataAlert.from_body(yaml.safe_load(path.read_text()))
        assert alert.spec is not None
        for rule in rules:
            assert rule.spec is not None
            matches = rule_matches(rule.spec, alert.spec, alert.labels)
            assert (explain_mismatch(rule.spec, alert.spec, alert.labels) is None) == matches, (path, rule.ref)


def test_the_installed_command_runs_in_a_subprocess() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "incidentio_operator", "route", "--dir", str(EXAMPLES), "-o", "json", str(DEV)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["deliveries"] == []
    assert report["unmatchedRules"] == {
        "analytics-quality-office-hours": 'spec.eventTypes: event type "schema_change" is not in [data_quality]',
        "critical-production-sla": 'spec.scope.environments: environment "development" matches none of [production]',
        "production-breaking-changes": (
            'spec.scope.environments: environment "development" matches none of [production]'
        ),
    }


def test_a_resolved_alert_is_routed_with_a_note_that_incidents_close(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--dir", str(EXAMPLES), str(EXAMPLES / "later/orders-column-removed-resolved.yaml"))
    assert code == 0
    assert (
        "note: the alert's state is resolved: the operator closes its open incidents instead of opening any"
    ) in out.splitlines()


def test_a_broken_rules_folder_exits_two_rather_than_answer_wrongly(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules.yaml").write_text("apiVersion: alerting.armor.dev/v1alpha1\nkind: [AlertRule\n")
    code, out, err = run(capsys, "--dir", str(tmp_path), str(ORDERS))
    assert (code, out) == (2, "")
    assert f"{tmp_path / 'rules.yaml'}: YAML syntax error" in err


ALERT_EVENTS = EXAMPLES / "alert-events"


def test_an_alert_event_destination_shows_the_event_it_would_get(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--dir", str(ALERT_EVENTS), str(ALERT_EVENTS / "alert.yaml"))
    assert code == 0
    lines = out.splitlines()
    start = lines.index(
        "IncidentIoDestination data-platform-events/incidentio-alert-events (rules: production-schema-alert-events)"
    )
    block = lines[start : start + 7]
    assert block[1:5] == [
        "  delivery: AlertEvent to alert source 01GW2G3V0S59R238FAHPDS1R66 "
        "(POST /v2/alert_events/http/01GW2G3V0S59R238FAHPDS1R66)",
        "  status:   firing",
        "  title:    [AnomalyArmor] Column customer_id removed from orders",
        "  key:      <derived at delivery from the alert's UID, the destination and the trigger epoch>",
    ]
    assert block[6].startswith('  metadata: {"asset": {')
    assert "  link:     https://app.anomalyarmor.ai/alerts/alert_abc123" in lines
    assert lines[-1] == "1 destination would get an incident or alert event. Nothing was sent."

    code, out, _ = run(capsys, "--dir", str(ALERT_EVENTS), "-o", "json", str(ALERT_EVENTS / "alert.yaml"))
    report = json.loads(out)
    assert [d["deliveryMode"] for d in report["deliveries"]] == ["AlertEvent"]
    code, out, _ = run(capsys, "--dir", str(EXAMPLES), "-o", "json", str(ORDERS))
    assert [d["deliveryMode"] for d in json.loads(out)["deliveries"]] == ["Incident"]
    (event,) = [d["alertEvent"] for d in report["deliveries"] if "alertEvent" in d]
    assert event["status"] == "firing" and event["alertSourceConfigId"] == "01GW2G3V0S59R238FAHPDS1R66"
    assert event["metadata"]["data_alert"]["name"] == "orders-column-removed"
