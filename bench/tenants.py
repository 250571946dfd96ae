"""Many teams at once: a namespace, destination and key each, at incident.io's real limit; against the minimal loop."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench import detector as bulk
from bench.cluster import Cluster
from bench.common import Figures, Sizes, run_minimal


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
