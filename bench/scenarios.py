"""The scenarios and their registry; each run builds a fresh cluster and returns figures timed from server logs."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.harness import DEMO_KEY

from bench import detector as bulk
from bench.cluster import ALERTS, NS, Cluster, alert_names
from bench.common import (
    CONCURRENCY,
    UNLIMITED,
    UNLIMITED_RATE,
    Figures,
    Sizes,
    deliver,
    restart_figures,
    run_minimal,
    settle,
    started,
)
from bench.costs import costs
from bench.scale import scale
from bench.steady import latency
from bench.tenants import tenants


def burst(workdir: Path, sizes: Sizes) -> Figures:
    cluster = started(Cluster(workdir), *UNLIMITED)
    try:
        names = alert_names("burst", sizes.burst)
        bulk.burst(cluster.env.kube.url, "create", "burst", len(names))
        cluster.wait_incidents(opened=len(names), timeout=60 + len(names) / 10)
        settle(cluster)
        bulk.burst(cluster.env.kube.url, "resolve", "burst", len(names))
        cluster.wait_incidents(opened=len(names), closed=len(names), timeout=60 + len(names) / 10)
        settle(cluster)

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


# ---------------------------------------------------------------------------------------------- rate-limited burst


def rate_limited(workdir: Path, sizes: Sizes) -> Figures:
    capacity, refill = sizes.limit_per_minute, sizes.limit_refill
    cluster = Cluster(workdir, rate_limit_per_minute=capacity, refill_per_second=refill)
    started(cluster, "--rate-limit-per-minute", str(capacity), "--rate-limit-refill", str(refill))
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


def restarts(workdir: Path, sizes: Sizes, repetitions: int) -> list[Figures]:
    """The delivered alerts are set up once and the operator restarted over them ``repetitions`` times: a
    restart writes nothing and calls nothing, so each one finds exactly the state the first found."""
    cluster = started(Cluster(workdir))
    try:
        assert cluster.operator is not None
        cluster.operator.stop()
        names = alert_names("delivered", sizes.restart)
        asyncio.run(deliver(cluster, names))
        assert len(cluster.sim_requests("create_incident", ok=True)) == len(names)
        figures = []
        for _ in range(repetitions):
            figures.append(restart_figures(cluster))
            assert cluster.operator is not None
            cluster.operator.stop()
        return figures
    finally:
        cluster.close()


SCENARIOS: dict[str, Callable[[Path, Sizes], Figures]] = {
    "burst": burst,
    "floor": floor,
    "latency": latency,
    "rate-limited": rate_limited,
    "tenants": tenants,
    "scale": scale,
    "costs": costs,
}
# Set up once and measured as many times as the bench repeats (the set-up is most of their time).
REPEATED_INSIDE: dict[str, Callable[[Path, Sizes, int], list[Figures]]] = {"restart": restarts}
# Long and slow to set up, measured once: see the README's Performance section.
ONCE = frozenset({"rate-limited", "tenants", "scale", "costs"})
RUNS = (*SCENARIOS, *REPEATED_INSIDE)


def run_scenario(name: str, workdir: Path, sizes: Sizes, repetitions: int = 1) -> list[Figures]:
    """The figures of one repetition of ``name`` (of all ``repetitions`` for a scenario repeated inside)."""
    if name in REPEATED_INSIDE:
        return REPEATED_INSIDE[name](workdir, sizes, repetitions)
    return [SCENARIOS[name](workdir, sizes)]
