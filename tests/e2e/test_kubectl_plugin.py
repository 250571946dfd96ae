"""`kubectl armor` against the API stand-in with the real operator running: test, why and incidents."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from incidentio_operator.api.destination import TEST_REQUESTED_ANNOTATION
from incidentio_operator.kubectl.cli import run
from tests.e2e import objects as o
from tests.harness import DEMO_KEY, Environment

DESTINATIONS, RULES, ALERTS = "incidentiodestinations", "alertrules", "dataalerts"
NS, OTHER_NS = o.NS, "team-b"
BROKEN_KEY = "not-a-valid-key"


@dataclass
class Plugin:
    env: Environment
    outputs: list[str] = field(default_factory=list)

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        """Run `kubectl armor ARGV` with the stand-in's kubeconfig; (exit status, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        code = run([*argv, "--kubeconfig", str(self.env.kubeconfig)], out, err)
        self.outputs += [out.getvalue(), err.getvalue()]
        return code, out.getvalue(), err.getvalue()


def team(env: Environment) -> None:
    """team-a: a working destination and a broken one, three rules, alerts in every state; team-b: one open."""
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    env.client.apply(o.destination(env.sim.url))
    env.client.apply(o.secret(BROKEN_KEY, name="broken-key"))
    env.client.apply(o.destination(env.sim.url, name="broken", secret_name="broken-key"))
    env.client.apply(o.rule("breaking", ["incidentio"], eventTypes=["schema_change"]))
    env.client.apply(o.rule("freshness", ["broken"], eventTypes=["freshness_violation"]))
    env.client.apply(o.rule("dev-only", ["incidentio"], scope={"environments": ["development"]}))
    env.client.apply(o.namespace(OTHER_NS))
    env.client.apply(o.secret(DEMO_KEY, ns=OTHER_NS))
    env.client.apply(o.destination(env.sim.url, ns=OTHER_NS))
    env.client.apply(o.rule("everything", ["incidentio"], ns=OTHER_NS))
    env.wait_ready(DESTINATIONS, NS, "incidentio")
    env.wait_ready(DESTINATIONS, OTHER_NS, "incidentio")
    env.wait_reason(DESTINATIONS, NS, "broken", "Unauthorized")
    for name in ("orders", "payments"):
        env.client.apply(o.alert(name))
        env.wait_ready(ALERTS, NS, name)
    env.client.apply(o.alert("payments", state="resolved"))
    env.wait_reason(ALERTS, NS, "payments", "Closed")
    env.client.apply(o.alert("events", event_type="freshness_violation"))
    env.wait_reason(ALERTS, NS, "events", "WaitingForDestination")
    env.client.apply(o.alert("staging", environment="staging", event_type="data_quality"))
    env.wait_reason(ALERTS, NS, "staging", "NoMatchingRule")
    env.client.apply(o.alert("ledger", ns=OTHER_NS))
    env.wait_ready(ALERTS, OTHER_NS, "ledger")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plugin]:
    env = Environment(tmp_path_factory.mktemp("plugin"))
    try:
        env.start_operator("--test-retry-base", "0.5")
        team(env)
        yield Plugin(env)
    finally:
        env.close()


def requested_at(env: Environment) -> str:
    body = env.get(DESTINATIONS, NS, "incidentio") or {}
    return str(body["metadata"]["annotations"][TEST_REQUESTED_ANNOTATION])


def delivery(env: Environment, namespace: str, name: str) -> dict[str, object]:
    (found,) = env.status(ALERTS, namespace, name)["deliveries"]
    return dict(found)


def test_test_runs_the_connection_test_again_and_prints_the_result(plugin: Plugin) -> None:
    identities = len(plugin.env.requests("identity"))
    code, out, err = plugin("test", "incidentio", "-n", NS)
    assert (code, err) == (0, "")
    requested = requested_at(plugin.env)
    assert plugin.env.status(DESTINATIONS, NS, "incidentio")["lastTest"]["requestedAt"] == requested
    assert f"connection test requested ({TEST_REQUESTED_ANNOTATION}={requested})" in out
    assert f"IncidentIoDestination {NS}/incidentio: Succeeded (Verify)" in out
    assert "  Verified: API key 'demo' with roles incident_creator, incident_editor, viewer" in out.splitlines()
    assert "Ready: True (Verified)" in out
    assert len(plugin.env.requests("identity")) > identities
    # A second request is a new value, so it runs the test again.
    code, out, _ = plugin("test", "incidentio", "-n", NS)
    assert code == 0
    assert requested_at(plugin.env) > requested


def test_test_exits_1_with_incidentios_answer_when_the_test_fails(plugin: Plugin) -> None:
    code, out, err = plugin("test", "broken", "-n", NS)
    assert (code, err) == (1, "")
    assert f"IncidentIoDestination {NS}/broken: Failed (Verify)" in out
    assert "HTTP 401: Unauthorized" in out
    assert "Ready: False (Unauthorized)" in out


def test_why_names_the_matching_rule_the_others_reasons_and_the_open_incident(plugin: Plugin) -> None:
    opened = delivery(plugin.env, NS, "orders")
    code, out, err = plugin("why", "orders", "-n", NS)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"DataAlert {NS}/orders: schema_change, severity critical, state triggered"
    assert lines[1].startswith("  Ready: True (Delivered")
    assert "Matching rules: breaking" in lines
    assert '  dev-only: spec.scope.environments: environment "production" matches none of [development]' in lines
    assert '  freshness: spec.eventTypes: event type "schema_change" is not in [freshness_violation]' in lines
    assert f"IncidentIoDestination {NS}/incidentio (rules: breaking): Ready (Verified)" in lines
    assert f"  epoch 1: Open, incident {opened['reference']}, {opened['permalink']}, attempts 1" in lines


def test_why_shows_a_delivery_waiting_for_a_destination_that_is_not_ready(plugin: Plugin) -> None:
    code, out, _ = plugin("why", "events", "-n", NS)
    assert code == 0
    not_ready = "not Ready (Unauthorized: HTTP 401: Unauthorized)"
    assert f"IncidentIoDestination {NS}/broken (rules: freshness): {not_ready}" in out
    assert "  epoch 1: Pending, attempts 0, waiting: IncidentIoDestination broken is not Ready (Unauthorized" in out


def test_why_shows_a_closed_incident_and_an_alert_no_rule_matches(plugin: Plugin) -> None:
    closed = delivery(plugin.env, NS, "payments")
    code, out, _ = plugin("why", "payments", "-n", NS)
    assert code == 0
    assert "note: the alert's state is resolved: the operator closes its open incidents instead of opening any" in out
    assert f"  epoch 1: Closed, incident {closed['reference']}, {closed['permalink']}, attempts 1" in out
    code, out, _ = plugin("why", "staging", "-n", NS)
    assert code == 0
    assert "No rule matches." in out.splitlines()
    assert '  breaking: spec.eventTypes: event type "data_quality" is not in [schema_change]' in out
    assert "  Ready: True (NoMatchingRule: no AlertRule in this namespace matches this alert)" in out


def test_incidents_lists_open_incidents_across_namespaces(plugin: Plugin) -> None:
    code, out, err = plugin("incidents")
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == "NAMESPACE ALERT STATE DESTINATION DELIVERY INCIDENT OPENED PERMALINK".split()
    orders, ledger = delivery(plugin.env, NS, "orders"), delivery(plugin.env, OTHER_NS, "ledger")
    # Not the closed incident, nor the delivery waiting for the broken destination (it has none yet).
    assert [row.split()[:6] for row in rows] == [
        [NS, "orders", "triggered", "incidentio", "Open", str(orders["reference"])],
        [OTHER_NS, "ledger", "triggered", "incidentio", "Open", str(ledger["reference"])],
    ]
    assert rows[0].split()[-1] == orders["permalink"]
    code, out, _ = plugin("incidents", "-n", OTHER_NS)
    assert code == 0
    assert [row.split()[1] for row in out.splitlines()[1:]] == ["ledger"]


def test_no_command_prints_an_api_key(plugin: Plugin) -> None:
    plugin("test", "incidentio", "-n", NS)
    plugin("why", "orders", "-n", NS)
    plugin("incidents")
    assert plugin.outputs
    for output in plugin.outputs:
        assert DEMO_KEY not in output and BROKEN_KEY not in output


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed")
def test_kubectl_finds_the_plugin_on_path_and_runs_it(plugin: Plugin) -> None:
    scripts = Path(sys.executable).parent
    assert (scripts / "kubectl-armor").exists(), "the console script is not installed: make venv"
    environment = {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["kubectl", "armor", "incidents", "-n", OTHER_NS, "--kubeconfig", str(plugin.env.kubeconfig)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()[1:]] == ["ledger"]
