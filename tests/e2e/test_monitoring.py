"""The monitoring component against a real Prometheus scraping the real operator through a lifecycle scenario.

Every dashboard query and every alert expression is evaluated through Prometheus's HTTP API and must
return the series the scenario produced; the rules are loaded too, and must evaluate without error.
"""

from __future__ import annotations

import math
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e import objects as o
from tests.e2e.test_observability import free_port
from tests.harness import DEMO_KEY, Environment, wait_for
from tests.test_monitoring import JOB, alerting_rules, panel_targets, write_rule_file

DESTINATIONS, RULES, ALERTS = "incidentiodestinations", "alertrules", "dataalerts"
NS = o.NS
GOOD, BROKEN = f"{NS}/incidentio", f"{NS}/broken"
FAST = ("--delivery-retry-base", "0.5", "--test-retry-base", "0.5")
# Grafana's variables as the dashboard is used against this Prometheus. The rate window spans the whole
# scenario, so a slow machine does not push its increments out of the window.
VARIABLES = {"$__rate_interval": "5m", "$job": JOB}

Labels = frozenset[tuple[str, str]]
ANY = "any"  # the series must be there, whatever its value (a rate, a quantile)
POSITIVE = "positive"  # the series must be there with a value above 0


def series(**labels: str) -> Labels:
    return frozenset(labels.items())


@dataclass(frozen=True)
class Expect:
    """The series a query must return: exactly these (complete) or at least these; each with a value or ANY/POSITIVE."""

    values: Mapping[Labels, float | str] = field(default_factory=dict)
    complete: bool = True


PANELS: dict[tuple[str, str], Expect] = {
    ("Operator instances up", "A"): Expect({series(): 1}),
    ("Deliveries pending", "A"): Expect({series(): 1}),
    ("Deliveries waiting for a destination", "A"): Expect({series(): 1}),
    ("Destinations not Ready", "A"): Expect({series(): 1}),
    ("Incidents opened", "A"): Expect({series(): 2}),
    ("Deliveries refused", "A"): Expect({series(): 1}),
    ("Deliveries by outcome", "A"): Expect({series(destination=GOOD): ANY, series(destination=BROKEN): 0}),
    ("Deliveries by outcome", "B"): Expect({series(destination=GOOD): ANY, series(destination=BROKEN): 0}),
    ("Deliveries by outcome", "C"): Expect({series(destination=GOOD): ANY, series(destination=BROKEN): 0}),
    # Every destination's counters start at 0 (so rate() sees its first delivery); the broken one has none.
    ("Incidents per destination", "A"): Expect({series(destination=GOOD): 2, series(destination=BROKEN): 0}),
    ("Incidents per destination", "B"): Expect({series(destination=GOOD): 1, series(destination=BROKEN): 0}),
    ("Incidents per destination", "C"): Expect({series(destination=GOOD): 1, series(destination=BROKEN): 0}),
    ("incident.io requests by code", "A"): Expect(
        {
            series(operation="create_incident", code="200"): ANY,
            series(operation="create_incident", code="429"): POSITIVE,
            series(operation="create_incident", code="503"): POSITIVE,
            series(operation="create_incident", code="422"): ANY,
            series(operation="edit_incident", code="200"): ANY,
            series(operation="identity", code="200"): ANY,
            series(operation="identity", code="401"): ANY,
        },
        complete=False,
    ),
    **{
        ("incident.io request latency", ref): Expect(
            {series(operation=name): ANY for name in ("create_incident", "edit_incident", "identity")}, complete=False
        )
        for ref in "ABC"
    },
    ("Rate limiting", "A"): Expect({series(): ANY}),
    ("Rate limiting", "B"): Expect({series(): ANY}),
    ("Rate limiting", "C"): Expect({series(): POSITIVE}),
    ("Work queue and deliveries", "A"): Expect({series(): ANY}),
    ("Work queue and deliveries", "B"): Expect({series(): 1}),
    ("Work queue and deliveries", "C"): Expect({series(): 1}),
    ("Reconcile errors", "A"): Expect({series(kind="dataalerts"): POSITIVE}, complete=False),
    ("Destination readiness", "A"): Expect({series(destination=GOOD): 1, series(destination=BROKEN): 0}),
    ("Connection tests by result", "A"): Expect(
        {series(destination=GOOD, result="Verified"): POSITIVE, series(destination=BROKEN, result="Unauthorized"): 1},
        complete=False,
    ),
}

ALERT_EXPRESSIONS: dict[str, Expect] = {
    "IncidentioOperatorDown": Expect({}),
    "IncidentioDestinationNotReady": Expect({series(destination=BROKEN): 0}),
    "IncidentioDeliveriesFailing": Expect({series(destination=GOOD): POSITIVE}),
    "IncidentioDeliveriesBacklogGrowing": Expect({series(job=JOB): 1}),
    "IncidentioRateLimited": Expect({series(job=JOB): POSITIVE}),
    "IncidentioReconcileErrors": Expect({series(job=JOB, kind="dataalerts"): POSITIVE}, complete=False),
    # The scenario's destinations have no heartbeat: no beat, no series, silent.
    "IncidentioHeartbeatFailing": Expect({}),
}


class QueryError(AssertionError):
    """Prometheus refused a query (a parse or evaluation error)."""


class Prometheus:
    """A real `prometheus` on loopback scraping the operator every second and evaluating the rules."""

    def __init__(self, binary: str, workdir: Path, target: str, rules: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path = workdir / "prometheus.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)
        wait_for(self._ready, timeout=60, what=f"prometheus ready (log: {self.log_path})")

    def _ready(self) -> bool:
        assert self.process.poll() is None, self.log_path.read_text(errors="replace")
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def query(self, expr: str) -> dict[Labels, float]:
        """An instant query: each series' labels (without __name__) and its value."""
        answer = self.http.get("/api/v1/query", params={"query": expr}).json()
        if answer.get("status") != "success":
            raise QueryError(f"{expr}: {answer.get('errorType')}: {answer.get('error')}")
        assert answer["data"]["resultType"] == "vector", answer
        return {
            frozenset((k, v) for k, v in item["metric"].items() if k != "__name__"): float(item["value"][1])
            for item in answer["data"]["result"]
        }

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return next(iter(result.values())) if result else None

    def rule_health(self) -> dict[str, tuple[str, str]]:
        groups = self.http.get("/api/v1/rules").json()["data"]["groups"]
        return {rule["name"]: (rule["health"], rule.get("lastError", "")) for g in groups for rule in g["rules"]}

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@dataclass
class Scenario:
    env: Environment
    prometheus: Prometheus


def until_scraped(prometheus: Prometheus, expr: str, expected: float, what: str) -> None:
    wait_for(lambda: prometheus.value(expr) == expected, timeout=60, what=f"{what} ({expr} == {expected})")


def transient_faults(env: Environment) -> None:
    """One 429 and one 503 from incident.io and one conflict on a status write: retried, each counted."""
    env.sim.faults.fail_next(1, status=429, operation="create_incident", retry_after="0")
    env.sim.faults.fail_next(1, status=503, operation="create_incident")
    env.kube.fail_next(1, status=409, verb="patch", resource=ALERTS, subresource="status")


def drive(env: Environment, prometheus: Prometheus) -> None:
    """Two incidents opened and one closed, one delivery refused, one waiting for a broken destination.

    The transient faults come in two rounds with a scrape between them, so their rates are above zero.
    """
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    env.client.apply(o.destination(env.sim.url))
    env.client.apply(o.rule("breaking", ["incidentio"], eventTypes=["schema_change"]))
    env.client.apply(o.secret("not-a-valid-key", name="broken-key"))
    env.client.apply(o.destination(env.sim.url, name="broken", secret_name="broken-key"))
    env.client.apply(o.rule("freshness", ["broken"], eventTypes=["freshness_violation"]))
    env.wait_ready(DESTINATIONS, NS, "incidentio")
    env.wait_reason(DESTINATIONS, NS, "broken", "Unauthorized")
    for round_, name in enumerate(("one", "two"), start=1):
        transient_faults(env)
        env.client.apply(o.alert(name))
        env.wait_ready(ALERTS, NS, name, timeout=60)
        codes = 'incidentio_operator_incidentio_requests_total{operation="create_incident", code=~"429|503"}'
        until_scraped(prometheus, f"sum({codes})", 2 * round_, f"round {round_} of transient faults scraped")
    env.sim.faults.fail_next(1, status=422, operation="create_incident")
    env.client.apply(o.alert("refused"))
    env.wait_reason(ALERTS, NS, "refused", "DeliveryFailed")
    env.client.apply(o.alert("stuck", event_type="freshness_violation"))
    env.wait_reason(ALERTS, NS, "stuck", "WaitingForDestination")
    env.client.apply(o.alert("one", state="resolved"))
    env.wait_reason(ALERTS, NS, "one", "Closed")
    for expr, expected in (
        ("sum(incidentio_operator_incidents_closed_total)", 1),
        ("sum(incidentio_operator_deliveries_failed_total)", 1),
        ("sum(incidentio_operator_deliveries_waiting)", 1),
        ("sum(incidentio_operator_deliveries_pending)", 1),
    ):
        until_scraped(prometheus, expr, expected, "the end of the scenario scraped")
    # rate() needs two samples of a series; the series born last (the close's request, the refused
    # create's 422) may have one so far. (The destinations' own counters start at 0 with the destination.)
    for metric in (
        'incidentio_operator_incidentio_requests_total{operation="edit_incident"}',
        'incidentio_operator_incidentio_requests_total{operation="create_incident", code="422"}',
        "incidentio_operator_incidents_closed_total",
        "incidentio_operator_deliveries_failed_total",
    ):
        wait_for(
            lambda metric=metric: (prometheus.value(f"min(count_over_time({metric}[5m]))") or 0) >= 2,
            timeout=60,
            what=f"two samples of {metric}",
        )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed: `make tools` installs it as root (Debian's prometheus package)")
    workdir = tmp_path_factory.mktemp("monitoring")
    env = Environment(workdir)
    metrics_port = free_port()
    prometheus: Prometheus | None = None
    try:
        prometheus = Prometheus(binary, workdir / "prometheus", f"127.0.0.1:{metrics_port}", write_rule_file(workdir))
        env.start_operator(*FAST, "--metrics-port", str(metrics_port))
        until_scraped(prometheus, f'sum(up{{job="{JOB}"}})', 1, "the operator scraped")
        drive(env, prometheus)
        yield Scenario(env, prometheus)
    finally:
        if prometheus is not None:
            prometheus.stop()
        env.close()


def check(result: Mapping[Labels, float], expect: Expect, what: str) -> None:
    shown = {", ".join(f"{k}={v}" for k, v in sorted(labels)) or "{}": value for labels, value in result.items()}
    missing = set(expect.values) - set(result)
    assert not missing, f"{what}: no series {sorted(map(sorted, missing))}; got {shown}"
    if expect.complete:
        assert set(result) == set(expect.values), f"{what}: unexpected series; got {shown}"
    for labels, wanted in expect.values.items():
        got = result[labels]
        if wanted == POSITIVE:
            assert got > 0, f"{what}: {sorted(labels)} is {got}, expected above 0"
        elif wanted != ANY:
            assert math.isclose(got, float(wanted)), f"{what}: {sorted(labels)} is {got}, expected {wanted}"


def substitute(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a dashboard variable the test does not know: {expr}"
    return expr


def panel_params() -> list[Any]:
    return [
        pytest.param(
            title,
            ref,
            expr,
            id=f"{title}/{ref}",
        )
        for title, ref, expr in panel_targets()
    ]


def alert_params() -> list[Any]:
    return [
        pytest.param(
            rule["alert"],
            str(rule["expr"]),
            id=rule["alert"],
        )
        for rule in alerting_rules()
    ]


def test_every_panel_and_alert_has_an_expectation() -> None:
    assert {(title, ref) for title, ref, _ in panel_targets()} == set(PANELS)
    assert {rule["alert"] for rule in alerting_rules()} == set(ALERT_EXPRESSIONS)


@pytest.mark.parametrize(("title", "ref", "expr"), panel_params())
def test_dashboard_query_returns_what_the_scenario_produced(
    scenario: Scenario, title: str, ref: str, expr: str
) -> None:
    check(scenario.prometheus.query(substitute(expr)), PANELS[(title, ref)], f"panel {title!r} query {ref}")


@pytest.mark.parametrize(("alert", "expr"), alert_params())
def test_alert_expression_returns_what_the_scenario_produced(scenario: Scenario, alert: str, expr: str) -> None:
    check(scenario.prometheus.query(expr), ALERT_EXPRESSIONS[alert], f"alert {alert}")


def test_prometheus_evaluates_every_rule_without_error(scenario: Scenario) -> None:
    names = {rule["alert"] for rule in alerting_rules()}

    def evaluated() -> dict[str, tuple[str, str]] | None:
        health = scenario.prometheus.rule_health()
        return health if all(health.get(name, ("unknown", ""))[0] != "unknown" for name in names) else None

    health = wait_for(evaluated, what="every rule evaluated once")
    assert {name: health[name] for name in names} == {name: ("ok", "") for name in names}


def test_the_operator_is_up_and_the_down_alert_would_be_silent(scenario: Scenario) -> None:
    assert scenario.prometheus.query(f'up{{job="{JOB}"}}') != {}
    with pytest.raises(QueryError):
        scenario.prometheus.query("sum(up{job=")
