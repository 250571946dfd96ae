"""The seven scenarios; each run builds a fresh cluster and returns its figures, timed from server-side logs."""

from __future__ import annotations

import asyncio
import datetime
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tests.e2e import objects
from tests.harness import DEMO_KEY, wait_for

from bench import detector as bulk
from bench.cluster import ALERTS, DESTINATION, NS, RULE, Cluster, alert_body, alert_names
from bench.detector import Detector
from bench.process import machine_busy_seconds, read_sample
from bench.scrape import lag_histogram, local_histogram, total
from incidentio_operator.api import AlertRule, DataAlert, Destination
from incidentio_operator.api.alert import FINALIZER
from incidentio_operator.decisions import delivery as lifecycle
from incidentio_operator.decisions.routing import route
from incidentio_operator.incidentio import Account, ApiKey, IncidentIoClient, RateLimit

Figures = dict[str, float]
CONCURRENCY = 32  # the operator's default --concurrency, which the floor mirrors


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is; ``quick`` shrinks all of them for the smoke test."""

    burst: int = 2000
    latency_rate: float = 20.0
    latency_window: float = 120.0
    latency_resolve_after: float = 2.0
    limited: int = 1000
    limit_per_minute: int = 1200
    limit_refill: float = 20.0
    restart: int = 10000
    tenants: int = 25
    tenant_alerts: int = 200

    @classmethod
    def quick(cls) -> Sizes:
        # A small bucket so that even a few alerts run into the limit, as the full scenario does.
        return cls(
            burst=30, latency_window=2.0, limited=30, limit_per_minute=20, restart=200, tenants=3, tenant_alerts=10
        )


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def _started(cluster: Cluster, *args: str) -> Cluster:
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


def _settle(cluster: Cluster) -> None:
    """Wait for the operator to finish what it is doing (its CPU goes quiet), bounded."""
    assert cluster.operator is not None
    cluster.operator.wait_idle(after=time.monotonic(), quiet=0.5, timeout=120.0)


# ---------------------------------------------------------------------------------------------- burst + economy


# The burst measures the operator's own throughput against a simulator without a rate limit, so the
# operator's client-side pacing (incident.io's 20/s per key) is lifted for it as well.
UNLIMITED = ("--rate-limit-per-minute", "1000000", "--rate-limit-refill", "100000")


def burst(workdir: Path, sizes: Sizes) -> Figures:
    cluster = _started(Cluster(workdir), *UNLIMITED)
    try:
        names = alert_names("burst", sizes.burst)
        bulk.burst(cluster.env.kube.url, "create", "burst", len(names))
        cluster.wait_incidents(opened=len(names), timeout=60 + len(names) / 10)
        _settle(cluster)
        bulk.burst(cluster.env.kube.url, "resolve", "burst", len(names))
        cluster.wait_incidents(opened=len(names), closed=len(names), timeout=60 + len(names) / 10)
        _settle(cluster)

        first_create = min(c.at for c in cluster.bench_kube_calls("create"))
        first_resolve = min(c.at for c in cluster.bench_kube_calls("patch"))
        opens = cluster.sim_requests("create_incident", ok=True)
        closes = cluster.sim_requests("edit_incident", ok=True)
        last_open = max(cluster.sim_wall(r) for r in opens)
        last_close = max(cluster.sim_wall(r) for r in closes)

        # Economy: every incident.io call and every write of the operator, per alert.
        by_id = cluster.incident_alerts()
        creates = Counter(str(r.body["name"]).rsplit(" ", 1)[-1] for r in opens)
        closed = Counter(by_id[r.path.split("/")[3]] for r in closes)
        # Each alert's writes, split at the moment the bench resolved it: the trigger's (including the
        # finalizer, added once in the object's life) and the resolve's.
        resolved_at = {c.name: c.at for c in cluster.bench_kube_calls("patch")}
        on_trigger: Counter[str] = Counter()
        on_resolve: Counter[str] = Counter()
        finalizer: Counter[str] = Counter()
        for c in cluster.operator_kube_calls():
            if c.resource == ALERTS and c.verb in ("patch", "update") and c.name in resolved_at:
                if not c.subresource:
                    finalizer[c.name] += 1  # the main resource: only ever the finalizer
                else:
                    (on_trigger if c.at < resolved_at[c.name] else on_resolve)[c.name] += 1
        calls = [r for r in cluster.sim_requests() if r.operation in ("create_incident", "edit_incident")]
        return {
            "open_rate": len(names) / (last_open - first_create),
            "close_rate": len(names) / (last_close - first_resolve),
            "creates_per_alert_min": min(creates[n] for n in names),
            "creates_per_alert_max": max(creates[n] for n in names),
            "closes_per_alert_min": min(closed[n] for n in names),
            "closes_per_alert_max": max(closed[n] for n in names),
            "incidentio_calls_per_alert": len(calls) / len(names),
            "kube_writes_trigger_max": max(on_trigger[n] for n in names),
            "kube_writes_resolve_max": max(on_resolve[n] for n in names),
            "kube_writes_per_change_mean": statistics.fmean(on_trigger[n] + on_resolve[n] for n in names) / 2,
            "kube_finalizer_writes_max": max(finalizer[n] for n in names),
            "events_per_alert": cluster.env.kube.count(verb="create", resource="events") / len(names),
        }
    finally:
        cluster.close()


# ---------------------------------------------------------------------------------------------- floor


def floor(workdir: Path, sizes: Sizes) -> Figures:
    figures: Figures = {}
    for transport, suffix in (("httpx", ""), ("operator", "_operator_transport")):
        cluster = Cluster(workdir / transport)
        try:
            count = sizes.burst
            command = [
                *(sys.executable, "-m", "bench.floor", cluster.env.sim.url, DEMO_KEY),
                *(str(count), str(CONCURRENCY), transport),
            ]
            subprocess.run(command, check=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
            opens = cluster.sim_requests("create_incident", ok=True)
            closes = cluster.sim_requests("edit_incident", ok=True)
            assert len(opens) == count and len(closes) == count, (len(opens), len(closes))
            # From the first request to the last: the floor has no Kubernetes leg before its first call.
            figures[f"open_rate{suffix}"] = count / (max(r.at for r in opens) - min(r.at for r in opens))
            figures[f"close_rate{suffix}"] = count / (max(r.at for r in closes) - min(r.at for r in closes))
        finally:
            cluster.close()
    return {**figures, **minimal_floor(workdir / "minimal", sizes)}


def minimal_floor(workdir: Path, sizes: Sizes) -> Figures:
    """The honest floor (bench/minimal.py) through the same burst as the operator's, timed the same way."""
    cluster = Cluster(workdir)
    cluster.setup_team()
    try:
        names = alert_names("burst", sizes.burst)
        since = time.time()
        process = run_minimal(cluster, len(names), {NS: DEMO_KEY}, UNLIMITED_RATE)
        try:
            bulk.burst(cluster.env.kube.url, "create", "burst", len(names))
            cluster.wait_incidents(opened=len(names), timeout=60 + len(names) / 10)
            bulk.burst(cluster.env.kube.url, "resolve", "burst", len(names))
            process.wait(timeout=60 + len(names) / 10)
        finally:
            process.kill()
        first_create = min(c.at for c in cluster.bench_kube_calls("create") if c.at >= since)
        first_resolve = min(c.at for c in cluster.bench_kube_calls("patch") if c.at >= since)
        last_open = max(cluster.sim_wall(r) for r in cluster.sim_requests("create_incident", ok=True))
        last_close = max(cluster.sim_wall(r) for r in cluster.sim_requests("edit_incident", ok=True))
        return {
            "open_rate_minimal": len(names) / (last_open - first_create),
            "close_rate_minimal": len(names) / (last_close - first_resolve),
        }
    finally:
        cluster.close()


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


# ---------------------------------------------------------------------------------------------- tenants


def tenants(workdir: Path, sizes: Sizes) -> Figures:
    """Many teams at once, each its own namespace, destination and key at incident.io's real limit: the operator,
    then the minimal loop doing the same, through the same bursts."""
    namespaces = [f"tenant-{i:02d}" for i in range(sizes.tenants)]
    keys = {ns: f"{ns}-key" for ns in namespaces}
    figures: Figures = {}
    for who in ("operator", "minimal"):
        capacity, refill = sizes.limit_per_minute, sizes.limit_refill
        cluster = Cluster(
            workdir / who, rate_limit_per_minute=capacity, refill_per_second=refill, keys=tuple(keys.values())
        )
        process: subprocess.Popen[bytes] | None = None
        try:
            for ns in namespaces:
                cluster.setup_team(ns, keys[ns])
            if who == "operator":
                cluster.start_operator("--rate-limit-per-minute", str(capacity), "--rate-limit-refill", str(refill))
                for ns in namespaces:
                    cluster.wait_team_ready(namespace=ns)
            else:
                process = run_minimal(cluster, len(namespaces) * sizes.tenant_alerts, keys, (capacity, refill))
            suffix = "" if who == "operator" else "_minimal"
            figures.update({f"{k}{suffix}": v for k, v in _tenant_bursts(cluster, namespaces, keys, sizes).items()})
            if process is not None:
                process.wait(timeout=120)
        finally:
            if process is not None:
                process.kill()
            cluster.close()
    for phase in ("open", "close"):
        figures[f"{phase}_calls_over_minimal"] = (
            figures[f"{phase}_calls_per_s"] / figures[f"{phase}_calls_per_s_minimal"]
        )
    return figures


def _tenant_bursts(cluster: Cluster, namespaces: list[str], keys: dict[str, str], sizes: Sizes) -> Figures:
    count = len(namespaces) * sizes.tenant_alerts
    timeout = 60 + 2 * sizes.tenant_alerts / sizes.limit_refill + count / 20
    figures: Figures = {}
    for phase, action, operation in (("open", "create", "create_incident"), ("close", "resolve", "edit_incident")):
        since = time.time()
        bulk.burst(cluster.env.kube.url, action, "alert", sizes.tenant_alerts, namespaces)
        cluster.wait_incidents(opened=count, closed=count if phase == "close" else None, timeout=timeout)
        start = min(c.at for c in cluster.bench_kube_calls("create" if phase == "open" else "patch") if c.at >= since)
        calls = [r for r in cluster.sim_requests(operation) if cluster.sim_wall(r) >= start]
        # Each tenant's last call of the phase, in seconds from the phase's first alert change.
        finished = {ns: max(cluster.sim_wall(r) for r in calls if r.key_name == keys[ns]) - start for ns in namespaces}
        everyone_busy = min(finished.values())
        answered = [r for r in calls if r.status != 429 and cluster.sim_wall(r) - start <= everyone_busy]
        rate = len(answered) / everyone_busy
        figures[f"{phase}_calls_per_s"] = rate
        figures[f"{phase}_ceiling_fraction"] = rate / (len(namespaces) * sizes.limit_refill)
        figures[f"{phase}_spread"] = max(finished.values()) / everyone_busy
        figures[f"{phase}_429"] = sum(1 for r in calls if r.status == 429)
    return figures


# ---------------------------------------------------------------------------------------------- latency


def latency(workdir: Path, sizes: Sizes) -> Figures:
    # 20 alerts/s is 40 calls/s, twice what one key's incident.io limit refills: under the real limit the
    # bucket (1,200) runs dry after a minute and pacing, not the operator, sets the latency. The
    # simulator has no limit here, and the operator's pacing is lifted as for the burst.
    cluster = _started(Cluster(workdir), *UNLIMITED)
    try:
        names = alert_names("steady", round(sizes.latency_rate * sizes.latency_window))
        detector = Detector(cluster.env.kube.url)
        load = Load(cluster)
        asyncio.run(detector.steady(names, sizes.latency_rate, sizes.latency_resolve_after))
        late = _wait_settled(cluster, names)
        figures = load.figures()
        created_at = detector.created_at
        resolved_at = {c.name: c.at for c in cluster.bench_kube_calls("patch")}
        opened_at: dict[str, float] = {}
        for r in cluster.sim_requests("create_incident", ok=True):
            opened_at.setdefault(str(r.body["name"]).rsplit(" ", 1)[-1], cluster.sim_wall(r))
        by_id = cluster.incident_alerts()
        closed_at: dict[str, float] = {}
        for r in cluster.sim_requests("edit_incident", ok=True):
            closed_at.setdefault(by_id[r.path.split("/")[3]], cluster.sim_wall(r))
        # An alert resolved before its incident was opened never gets one (rightly): it counts as at least
        # the time it was open, a lower bound on what its latency would have been.
        floor_ms = sizes.latency_resolve_after * 1000
        to_open = [(opened_at[n] - created_at[n]) * 1000 if n in opened_at else floor_ms for n in names]
        to_close = [(closed_at[n] - max(resolved_at[n], opened_at[n])) * 1000 for n in names if n in opened_at]
        return {
            "open_p50_ms": percentile(to_open, 50),
            "open_p95_ms": percentile(to_open, 95),
            "open_p99_ms": percentile(to_open, 99),
            "close_p50_ms": percentile(to_close, 50),
            "close_p95_ms": percentile(to_close, 95),
            "close_p99_ms": percentile(to_close, 99),
            "open_p99_over_p50": percentile(to_open, 99) / percentile(to_open, 50),
            "resolved_before_open": len(late),
            **figures,
        }
    finally:
        cluster.close()


def _wait_settled(cluster: Cluster, names: Sequence[str], timeout: float = 120.0) -> list[str]:
    """Wait until every alert has had its incident opened and closed, or was resolved before it was opened;
    returns the latter (the stand-in shows them resolved, with no incident, once the operator has looked)."""

    def done() -> list[str] | None:
        by_id = cluster.incident_alerts()
        closed = {by_id[r.path.split("/")[3]] for r in cluster.sim_requests("edit_incident", ok=True)}
        opened = set(by_id.values())
        if opened - closed:
            return None
        late = [n for n in names if n not in opened]
        for name in late:
            status = (cluster.env.kube.get_object(objects.GV, ALERTS, NS, name) or {}).get("status") or {}
            if status.get("observedState") != "resolved":
                return None
        return late or ["-"]

    late = wait_for(done, timeout=timeout, what="every alert opened and closed, or resolved before it opened")
    return [n for n in late if n != "-"]


# ---------------------------------------------------------------------------------------------- rate-limited burst


def rate_limited(workdir: Path, sizes: Sizes) -> Figures:
    capacity, refill = sizes.limit_per_minute, sizes.limit_refill
    cluster = Cluster(workdir, rate_limit_per_minute=capacity, refill_per_second=refill)
    _started(cluster, "--rate-limit-per-minute", str(capacity), "--rate-limit-refill", str(refill))
    try:
        names = alert_names("limited", sizes.limited)
        bulk.burst(cluster.env.kube.url, "create", "limited", len(names))
        timeout = 60 + 2 * len(names) / refill
        cluster.wait_incidents(opened=len(names), timeout=timeout)
        bulk.burst(cluster.env.kube.url, "resolve", "limited", len(names))
        cluster.wait_incidents(opened=len(names), closed=len(names), timeout=timeout)
        requests = cluster.sim_requests()
        start = min(r.at for r in requests if r.operation == "create_incident")
        window = [r for r in requests if r.at >= start]
        answered = [r for r in window if r.status != 429]
        seconds = max(r.at for r in window) - start
        # The bucket is (nearly) full at the first create: at most capacity + refill * seconds can be answered.
        return {
            "limit_fraction": len(answered) / (capacity + refill * seconds),
            "achieved_rate": len(answered) / seconds,
            "responses_429": sum(1 for r in window if r.status == 429),
            "share_429": sum(1 for r in window if r.status == 429) / len(window),
        }
    finally:
        cluster.close()


# ---------------------------------------------------------------------------------------------- restart + memory


async def _deliver(cluster: Cluster, names: Sequence[str]) -> None:
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

        async def one(name: str) -> None:
            body = alert_body(name)
            body["metadata"]["finalizers"] = [FINALIZER]
            stored = kube.put_object(body)
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
            kube.put_object({**stored, "status": settled.status})

        await asyncio.gather(*(one(name) for name in names))
    # The rule counts the alerts it matches, as the operator would have left it.
    rule = kube.get_object(gv, "alertrules", NS, RULE) or {}
    kube.put_object({**rule, "status": {**(rule.get("status") or {}), "matchedAlerts": len(names)}})


def restart(workdir: Path, sizes: Sizes) -> Figures:
    cluster = _started(Cluster(workdir))
    try:
        assert cluster.operator is not None
        cluster.operator.stop()
        names = alert_names("delivered", sizes.restart)
        asyncio.run(_deliver(cluster, names))
        assert len(cluster.sim_requests("create_incident", ok=True)) == len(names)
        since_wall = time.time()
        incidentio_before = len(cluster.env.sim.requests)
        operator = cluster.start_operator()
        # Quiet CPU counts only once the operator has read the alerts (a list, or a watch replaying them).
        wait_for(
            lambda: any(
                c.resource == ALERTS and c.verb in ("list", "watch") for c in cluster.operator_kube_calls(since_wall)
            ),
            timeout=120,
            what="the operator reading the DataAlerts",
        )
        idle_at = operator.wait_idle(after=time.monotonic(), quiet=1.0, timeout=180.0)
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
    finally:
        cluster.close()


SCENARIOS: dict[str, Callable[[Path, Sizes], Figures]] = {
    "burst": burst,
    "floor": floor,
    "latency": latency,
    "rate-limited": rate_limited,
    "restart": restart,
    "tenants": tenants,
}


def run_scenario(name: str, workdir: Path, sizes: Sizes) -> Figures:
    return SCENARIOS[name](workdir, sizes)
