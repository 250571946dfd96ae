"""Steady load: alerts created at a fixed rate and resolved a little later; latency, loop lag, who used the CPU."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from tests.e2e import objects
from tests.harness import wait_for

from bench.cluster import ALERTS, NS, Cluster, alert_names
from bench.common import UNLIMITED, Figures, Load, Sizes, percentile, started
from bench.detector import Detector


def latency(workdir: Path, sizes: Sizes) -> Figures:
    # 20 alerts/s is 40 calls/s, twice what one key's incident.io limit refills: under the real limit the
    # bucket (1,200) runs dry after a minute and pacing, not the operator, sets the latency. The
    # simulator has no limit here, and the operator's pacing is lifted as for the burst.
    cluster = started(Cluster(workdir), *UNLIMITED)
    try:
        return steady_load(cluster, sizes)
    finally:
        cluster.close()


def steady_load(cluster: Cluster, sizes: Sizes) -> Figures:
    """Alerts at ``sizes.latency_rate`` a second for ``latency_window`` seconds, each resolved a little later."""
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
