"""What every scenario shares: sizes, percentiles, a started cluster, the load figures, the minimal loop."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tests.e2e import objects
from tests.harness import DEMO_KEY, wait_for

from bench.cluster import ALERTS, DESTINATION, NS, RULE, Cluster, alert_body
from bench.process import machine_busy_seconds, read_sample
from bench.scrape import lag_histogram, local_histogram, total
from incidentio_operator.api import AlertRule, DataAlert, Destination
from incidentio_operator.api.alert import FINALIZER, OWNER_LABEL
from incidentio_operator.controller.settings import Settings
from incidentio_operator.decisions import delivery as lifecycle
from incidentio_operator.decisions.routing import route
from incidentio_operator.incidentio import Account, ApiKey, IncidentIoClient, RateLimit

Figures = dict[str, float]
CONCURRENCY = 32  # the operator's default --concurrency, which the floor mirrors


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is; ``quick`` shrinks all of them for the smoke test."""

    burst: int = 1000
    latency_rate: float = 20.0
    latency_window: float = 120.0
    latency_resolve_after: float = 2.0
    limited: int = 1000
    limit_per_minute: int = 1200
    limit_refill: float = 20.0
    restart: int = 10000
    tenants: int = 25
    tenant_alerts: int = 200
    scale: int = 50000
    drift_open: int = 1000
    drift_warmup: float = 65.0
    drift_window: float = 60.0
    noise_decisions: int = 2000
    edited: int = 50
    edit_pace: float = 0.2
    secrets: int = 2000

    @classmethod
    def quick(cls) -> Sizes:
        # A small bucket so that even a few alerts run into the limit, as the full scenario does.
        return cls(
            burst=30,
            latency_window=2.0,
            limited=30,
            limit_per_minute=20,
            restart=200,
            tenants=3,
            tenant_alerts=10,
            scale=300,
            drift_open=20,
            drift_warmup=0.0,
            drift_window=1.0,
            noise_decisions=50,
            edited=5,
            secrets=50,
        )


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def started(cluster: Cluster, *args: str) -> Cluster:
    cluster.setup_team()
    cluster.start_operator(*args)
    cluster.wait_team_ready()
    return cluster


WAITS = "incidentio_operator_rate_limit_waits_total"


class Load:
    """From its creation to ``figures()``: the operator's loop lag, the stand-in's, and the machine's CPU by whom."""

    def __init__(self, cluster: Cluster) -> None:
        assert cluster.operator is not None
        self.cluster, self.operator = cluster, cluster.operator
        self.lag = lag_histogram(cluster.metrics_port)
        self.waits = total(cluster.metrics_port, WAITS)
        self.standin_lag = local_histogram(cluster.standin_lag)
        self.started = time.monotonic()
        self.machine = machine_busy_seconds()
        self.bench = _cpu_seconds(os.getpid())
        self.operator_cpu = _cpu_seconds(self.operator.process.pid)

    def figures(self) -> Figures:
        seconds = time.monotonic() - self.started
        lag = lag_histogram(self.cluster.metrics_port).since(self.lag)
        waits = total(self.cluster.metrics_port, WAITS) - self.waits
        standin = local_histogram(self.cluster.standin_lag).since(self.standin_lag)
        operator = _cpu_seconds(self.operator.process.pid) - self.operator_cpu
        bench = _cpu_seconds(os.getpid()) - self.bench
        machine = machine_busy_seconds() - self.machine
        # Histogram figures are upper bounds: the bucket each falls in, not the sample itself.
        return {
            "loop_lag_p99_ms": lag.quantile(0.99) * 1000,
            "loop_lag_max_ms": lag.maximum() * 1000,
            "standin_loop_lag_max_ms": standin.maximum() * 1000,
            "rate_limit_waits": waits,
            "operator_cores": operator / seconds,
            "bench_cores": bench / seconds,
            "other_cores": max(0.0, machine - operator - bench) / seconds,
        }


def _cpu_seconds(pid: int) -> float:
    sample = read_sample(pid)
    return sample.cpu_seconds if sample is not None else 0.0


def settle(cluster: Cluster) -> None:
    """Wait for the operator to finish what it is doing (its CPU goes quiet), bounded."""
    assert cluster.operator is not None
    cluster.operator.wait_idle(after=time.monotonic(), quiet=0.5, timeout=120.0)


# The burst measures the operator's own throughput against a simulator without a rate limit, so the
# operator's client-side pacing (incident.io's 20/s per key) is lifted for it as well.
UNLIMITED = ("--rate-limit-per-minute", "1000000", "--rate-limit-refill", "100000")

UNLIMITED_RATE = (1_000_000, 100_000.0)


def run_minimal(
    cluster: Cluster, count: int, keys: dict[str, str], limit: tuple[int, float]
) -> subprocess.Popen[bytes]:
    """Start bench.minimal against the cluster and return once its watch is open."""
    since = time.time()
    command = [
        *(sys.executable, "-m", "bench.minimal", cluster.env.kube.url, cluster.env.sim.url),
        *(str(count), str(limit[0]), str(limit[1])),
        *(f"{ns}={key}" for ns, key in keys.items()),
    ]
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1])
    wait_for(
        lambda: any(c.verb == "watch" and c.resource == ALERTS for c in cluster.operator_kube_calls(since)),
        timeout=60,
        what="the minimal loop watching DataAlerts",
    )
    return process


def restart_figures(cluster: Cluster, *args: str) -> Figures:
    """Start the (stopped) operator over what the cluster holds and measure it until idle: how long, what it
    called and wrote, its memory."""
    since_wall = time.time()
    incidentio_before = len(cluster.env.sim.requests)
    operator = cluster.start_operator(*args)
    # Quiet CPU counts only once the operator has read the alerts (a list, or a watch replaying them).
    wait_for(
        lambda: any(
            c.resource == ALERTS and c.verb in ("list", "watch") for c in cluster.operator_kube_calls(since_wall)
        ),
        timeout=120,
        what="the operator reading the DataAlerts",
    )
    # A bound, not a target: on a busy machine 50,000 alerts have taken over 3 minutes.
    idle_at = operator.wait_idle(after=time.monotonic(), quiet=1.0, timeout=600.0)
    at_idle = [s for s in operator.snapshot() if s.at >= idle_at]
    sample = at_idle[0] if at_idle else operator.snapshot()[-1]
    kube_calls = cluster.operator_kube_calls(since_wall)
    writes = [c for c in kube_calls if c.verb in ("patch", "update", "create", "delete")]
    for c in writes:  # a restart should write nothing: name whatever it did write
        print(f"restart wrote: {c.verb} {c.resource}/{c.subresource or ''} {c.namespace}/{c.name}", file=sys.stderr)
    return {
        "idle_seconds": idle_at - operator.started_at,
        "incidentio_calls": len(cluster.env.sim.requests) - incidentio_before,
        "kube_calls": len(kube_calls),
        "kube_writes": len(writes),
        "rss_peak_mb": max(s.hwm_bytes for s in operator.snapshot()) / 2**20,
        "rss_idle_mb": sample.rss_bytes / 2**20,
    }


# What the API server gives each object and a copy must not share (its generation and creation time it may).
SERVER_SET = frozenset({"uid", "resourceVersion", "managedFields"})


def admitted_text(stored: Mapping[str, Any]) -> str:
    """An object the API admitted (its defaults applied), as JSON without its status and server-set metadata."""
    meta = {k: v for k, v in stored["metadata"].items() if k not in SERVER_SET}
    return json.dumps({**{k: v for k, v in stored.items() if k != "status"}, "metadata": meta})


def clone_of(text: str, name: str, new_name: str) -> dict[str, Any]:
    """A copy of `admitted_text`'s object named ``new_name`` wherever it said ``name``, with a uid of its own.

    Stored with the stand-in's `restore_object` (no admission): admitting thousands of copies of an object
    the API admitted once would be most of a scenario's set-up time and measures nothing.
    """
    body: dict[str, Any] = json.loads(text.replace(name, new_name))
    body["metadata"]["uid"] = str(uuid.uuid4())
    return body


async def deliver(cluster: Cluster, names: Sequence[str]) -> None:
    """Put the alerts in the stand-in as the operator leaves them once delivered, with their incidents opened.

    The status comes from the operator's own pure planner and settler, and each incident is created through
    the simulator's API with the idempotency key the operator derives, so a restart finds exactly its own state.
    """
    kube = cluster.env.kube
    gv = objects.GV
    destination = Destination.from_body(kube.get_object(gv, "incidentiodestinations", NS, DESTINATION) or {})
    rules = [AlertRule.from_body(kube.get_object(gv, "alertrules", NS, RULE) or {})]
    assert destination.spec is not None
    account = Account(cluster.env.sim.url, ApiKey(DEMO_KEY))
    limit = asyncio.Semaphore(CONCURRENCY)
    async with IncidentIoClient(rate_limit=RateLimit(10**9, 10**9)) as client:
        body = alert_body(names[0])
        body["metadata"]["finalizers"] = [FINALIZER]
        # The replica that opened the incidents labels the alert as their owner (one replica: "all").
        body["metadata"]["labels"] = {**(body["metadata"].get("labels") or {}), OWNER_LABEL: Settings().owner}
        first = kube.put_object(body)
        text = admitted_text(first)

        async def one(name: str) -> None:
            stored = first if name == names[0] else clone_of(text, names[0], name)
            alert = DataAlert.from_body(stored)
            assert alert.spec is not None
            now = datetime.datetime.now(datetime.UTC)
            routing = route(alert.spec, alert.ref, alert.labels, rules, allow_cross_namespace=False)
            context = lifecycle.AlertContext(alert, routing, {destination.ref: destination}, now)
            plan = lifecycle.plan(context)
            (action,) = plan.actions
            assert isinstance(action, lifecycle.OpenIncident)
            async with limit:
                incident = await client.create_incident(account, action.request)
            pending = DataAlert.from_body({**stored, "status": plan.status})
            outcome = lifecycle.Outcome(action.label, action.epoch, incident=incident)
            settled = lifecycle.settle(replace(context, alert=pending), plan, [outcome])
            if stored is first:
                kube.put_object({**stored, "status": settled.status})
            else:
                kube.restore_object({**stored, "status": settled.status})

        await asyncio.gather(*(one(name) for name in names))
    # The rule counts the alerts it matches, as the operator would have left it.
    rule = kube.get_object(gv, "alertrules", NS, RULE) or {}
    kube.put_object({**rule, "status": {**(rule.get("status") or {}), "matchedAlerts": len(names)}})
