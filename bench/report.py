"""The figures of a bench run: which scenario yields each, its target, the table and the JSON."""

from __future__ import annotations

import math
import operator
import os
import platform
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Runs = Mapping[str, Sequence[Mapping[str, float]]]  # run name → the figures of each repetition


@dataclass(frozen=True)
class Target:
    text: str
    check: Callable[[float], bool]


def at_least(value: float, unit: str = "") -> Target:
    return Target(f">= {value:g}{unit}", lambda x: operator.ge(x, value))


def at_most(value: float, unit: str = "") -> Target:
    return Target(f"<= {value:g}{unit}", lambda x: operator.le(x, value))


def exactly(value: float) -> Target:
    return Target(f"== {value:g}", lambda x: x == value)


@dataclass(frozen=True)
class Figure:
    scenario: str  # as the issue names it
    run: str  # the scenario run that measures it
    key: str
    label: str
    unit: str
    target: Target | None = None
    # A figure computed from two runs' figures of the same repetition (e.g. the ratio to the floor).
    over: tuple[str, str] | None = None


TENANTS = (
    Figure("tenants", "tenants", "open_calls_per_s", "burst: incident.io calls/s, all keys busy", "calls/s"),
    Figure("tenants", "tenants", "open_ceiling_fraction", "burst: calls/s / (keys x 20/s)", "ratio", at_least(0.9)),
    Figure("tenants", "tenants", "open_calls_over_minimal", "burst: calls/s / minimal loop's", "ratio", at_least(0.8)),
    Figure("tenants", "tenants", "open_spread", "burst: slowest tenant / fastest", "ratio", at_most(1.5)),
    Figure("tenants", "tenants", "open_429", "burst: 429 responses", "count", exactly(0)),
    Figure("tenants", "tenants", "close_calls_per_s", "resolve: incident.io calls/s, all keys busy", "calls/s"),
    Figure("tenants", "tenants", "close_ceiling_fraction", "resolve: calls/s / (keys x 20/s)", "ratio", at_least(0.9)),
    Figure(
        "tenants", "tenants", "close_calls_over_minimal", "resolve: calls/s / minimal loop's", "ratio", at_least(0.8)
    ),
    Figure("tenants", "tenants", "close_spread", "resolve: slowest tenant / fastest", "ratio", at_most(1.5)),
    Figure("tenants", "tenants", "close_429", "resolve: 429 responses", "count", exactly(0)),
    Figure("tenants", "tenants", "open_calls_per_s_minimal", "minimal loop, burst: calls/s", "calls/s"),
    Figure("tenants", "tenants", "close_calls_per_s_minimal", "minimal loop, resolve: calls/s", "calls/s"),
    Figure("tenants", "tenants", "open_spread_minimal", "minimal loop, burst: slowest / fastest", "ratio"),
)
SCALE = (
    Figure("scale", "scale", "idle_seconds", "restart over 50k settled: start -> idle", "s", at_most(30)),
    Figure("scale", "scale", "incidentio_calls", "restart over 50k: incident.io calls", "count", exactly(0)),
    Figure("scale", "scale", "kube_writes", "restart over 50k: Kubernetes writes", "count", exactly(0)),
    Figure("scale", "scale", "kube_calls", "restart over 50k: Kubernetes calls", "count"),
    Figure("scale", "scale", "rss_peak_mb", "restart over 50k: peak RSS", "MB", at_most(300)),
    Figure("scale", "scale", "steady_open_p50_ms", "50k present, steady: create -> open p50", "ms"),
    Figure("scale", "scale", "steady_open_p99_ms", "50k present, steady: create -> open p99", "ms", at_most(250)),
    Figure("scale", "scale", "steady_close_p99_ms", "50k present, steady: resolved -> closed p99", "ms"),
    Figure(
        "scale", "scale", "steady_loop_lag_max_ms", "50k present, steady: loop lag max (bucket)", "ms", at_most(100)
    ),
    Figure("scale", "scale", "steady_other_cores", "50k present, steady: CPU of everything else", "cores"),
)
COSTS = (
    Figure("costs", "costs", "drift_reads_per_s", "drift reads, 1,000 open incidents, 1m interval", "reads/s"),
    Figure("costs", "costs", "drift_budget_share", "drift reads / the key's 20/s", "ratio", at_most(0.05)),
    Figure("costs", "costs", "edits_per_alert_min", "10-change burst: edits per alert, min", "count", exactly(1)),
    Figure("costs", "costs", "edits_per_alert_max", "10-change burst: edits per alert, max", "count", exactly(1)),
    Figure("costs", "costs", "edits_per_alert_mean", "10-change burst: edits per alert, mean", "count"),
    Figure("costs", "costs", "edit_after_burst_p50_s", "10-change burst: last change -> edit p50", "s"),
    # Not the operator's: the harness made a burst only if no alert paused as long as the quiet period (3 s).
    Figure("costs", "costs", "edit_burst_pause_max_s", "10-change burst: longest pause in a burst", "s", at_most(3)),
    Figure("costs", "costs", "decision_plain_us", "decision per alert: 1 rule", "us"),
    Figure("costs", "costs", "decision_noise_us", "decision per alert: +20 noise rules, 5 blackouts", "us"),
    Figure("costs", "costs", "noise_evaluation_us", "noise-control evaluation per alert", "us"),
    Figure("costs", "costs", "secrets_rss_mb", "idle RSS with 2,000 unrelated Secrets", "MB"),
    Figure("costs", "costs", "secrets_rss_delta_mb", "idle RSS: with them - without", "MB"),
    Figure("costs", "costs", "secret_bodies_read", "Secret bodies the operator read", "count"),
)

FIGURES: tuple[Figure, ...] = (
    Figure("burst", "burst", "open_rate", "trigger -> incident open", "alerts/s", at_least(100)),
    Figure("burst", "burst", "close_rate", "resolve -> incident closed", "alerts/s", at_least(100)),
    Figure("floor", "floor", "open_rate", "bare httpx creates", "calls/s"),
    Figure("floor", "floor", "close_rate", "bare httpx closes", "calls/s"),
    Figure("floor", "burst", "open_ratio", "burst open / floor", "ratio", at_least(0.5), ("open_rate", "open_rate")),
    Figure(
        "floor", "burst", "close_ratio", "burst close / floor", "ratio", at_least(0.5), ("close_rate", "close_rate")
    ),
    # The same loop over the operator's own transport (aiohttp under httpx): what the operator adds beyond it.
    Figure("floor", "floor", "open_rate_operator_transport", "bare httpx, operator's transport: creates", "calls/s"),
    Figure("floor", "floor", "close_rate_operator_transport", "bare httpx, operator's transport: closes", "calls/s"),
    Figure(
        "floor",
        "burst",
        "open_ratio_operator_transport",
        "burst open / that floor",
        "ratio",
        over=("open_rate", "open_rate_operator_transport"),
    ),
    Figure(
        "floor",
        "burst",
        "close_ratio_operator_transport",
        "burst close / that floor",
        "ratio",
        over=("close_rate", "close_rate_operator_transport"),
    ),
    Figure("latency", "latency", "open_p50_ms", "create -> open p50", "ms"),
    Figure("latency", "latency", "open_p95_ms", "create -> open p95", "ms"),
    Figure("latency", "latency", "open_p99_ms", "create -> open p99", "ms", at_most(500)),
    Figure("latency", "latency", "close_p50_ms", "resolved -> closed p50", "ms"),
    Figure("latency", "latency", "close_p95_ms", "resolved -> closed p95", "ms"),
    Figure("latency", "latency", "close_p99_ms", "resolved -> closed p99", "ms", at_most(500)),
    Figure("latency", "latency", "open_p99_over_p50", "create -> open p99 / p50", "ratio", at_most(5)),
    Figure("latency", "latency", "resolved_before_open", "alerts resolved before their incident opened", "count"),
    Figure("latency", "latency", "loop_lag_p99_ms", "operator event-loop lag p99 (bucket bound)", "ms"),
    Figure("latency", "latency", "loop_lag_max_ms", "operator event-loop lag max (bucket bound)", "ms", at_most(100)),
    Figure("latency", "latency", "standin_loop_lag_max_ms", "stand-in + simulator loop lag max (bucket)", "ms"),
    Figure("latency", "latency", "rate_limit_waits", "operator waits for its rate limiter", "count"),
    Figure("latency", "latency", "operator_cores", "CPU: operator", "cores"),
    Figure("latency", "latency", "bench_cores", "CPU: stand-in, simulator, detector", "cores"),
    Figure("latency", "latency", "other_cores", "CPU: everything else on the machine", "cores"),
    # The honest floor: the same burst through bench/minimal.py (watch, create or close, one status write).
    Figure("floor", "floor", "open_rate_minimal", "minimal loop: trigger -> incident open", "alerts/s"),
    Figure("floor", "floor", "close_rate_minimal", "minimal loop: resolve -> incident closed", "alerts/s"),
    Figure(
        "floor",
        "burst",
        "open_ratio_minimal",
        "burst open / minimal loop",
        "ratio",
        at_least(0.5),
        ("open_rate", "open_rate_minimal"),
    ),
    Figure(
        "floor",
        "burst",
        "close_ratio_minimal",
        "burst close / minimal loop",
        "ratio",
        at_least(0.5),
        ("close_rate", "close_rate_minimal"),
    ),
    *TENANTS,
    *SCALE,
    *COSTS,
    Figure("rate-limited", "rate-limited", "limit_fraction", "answered / allowed by limit", "ratio", at_least(0.95)),
    Figure("rate-limited", "rate-limited", "achieved_rate", "answered calls per second", "calls/s"),
    Figure("rate-limited", "rate-limited", "share_429", "calls answered 429", "ratio", at_most(0.01)),
    Figure("rate-limited", "rate-limited", "responses_429", "429 responses", "count"),
    Figure("restart", "restart", "idle_seconds", "start -> idle", "s", at_most(60)),
    Figure("restart", "restart", "incidentio_calls", "incident.io calls", "count", exactly(0)),
    Figure("restart", "restart", "kube_calls", "Kubernetes API calls", "count"),
    Figure("restart", "restart", "kube_writes", "Kubernetes API writes", "count", exactly(0)),
    Figure("economy", "burst", "creates_per_alert_min", "creates per alert (min)", "calls", exactly(1)),
    Figure("economy", "burst", "creates_per_alert_max", "creates per alert (max)", "calls", exactly(1)),
    Figure("economy", "burst", "closes_per_alert_min", "closes per alert (min)", "calls", exactly(1)),
    Figure("economy", "burst", "closes_per_alert_max", "closes per alert (max)", "calls", exactly(1)),
    Figure(
        "economy",
        "burst",
        "kube_writes_trigger_max",
        "k8s status writes on trigger (max)",
        "writes",
        at_most(2),
    ),
    Figure("economy", "burst", "kube_writes_resolve_max", "k8s status writes on resolve (max)", "writes", at_most(2)),
    Figure("economy", "burst", "kube_writes_per_change_mean", "k8s status writes per state change (mean)", "writes"),
    Figure("economy", "burst", "kube_finalizer_writes_max", "finalizer writes per alert (once in its life)", "writes"),
    Figure("economy", "burst", "events_per_alert", "Events posted per alert", "events"),
    Figure("memory", "restart", "rss_peak_mb", "peak RSS, N alerts", "MB", at_most(200)),
    Figure("memory", "restart", "rss_idle_mb", "RSS at idle after startup", "MB"),
)

SCENARIO_RUNS: dict[str, tuple[str, ...]] = {
    "burst": ("burst",),
    "floor": ("burst", "floor"),
    "latency": ("latency",),
    "rate-limited": ("rate-limited",),
    "restart": ("restart",),
    "economy": ("burst",),
    "memory": ("restart",),
    "tenants": ("tenants",),
    "scale": ("scale",),
    "costs": ("costs",),
}


def values_of(figure: Figure, runs: Runs) -> list[float]:
    if figure.over is None:
        return [float(r[figure.key]) for r in runs.get(figure.run, ()) if figure.key in r]
    top, bottom = figure.over
    # Pair repetitions by index: each burst run against the floor run measured next to it.
    return [
        float(a[top]) / float(b[bottom]) for a, b in zip(runs.get(figure.run, ()), runs.get("floor", ()), strict=False)
    ]


def summarise(scenarios: Sequence[str], runs: Runs, meta: Mapping[str, Any]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for figure in FIGURES:
        if figure.scenario not in scenarios:
            continue
        values = values_of(figure, runs)
        row: dict[str, Any] = {
            "scenario": figure.scenario,
            "figure": figure.key,
            "label": figure.label,
            "unit": figure.unit,
            "runs": values,
            "median": statistics.median(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "target": figure.target.text if figure.target else None,
            "pass": None,
        }
        if figure.target is not None and values:
            row["pass"] = figure.target.check(row["median"])
        rows.append(row)
    return {"machine": machine(), **meta, "figures": rows, "raw": {k: list(v) for k, v in runs.items()}}


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "> last bucket" if value > 0 else str(value)  # a lag past the histogram's last bound
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    if abs(value) < 1:
        # Four places, so a ratio just under its target (0.4997) never prints as the target itself.
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def table(summary: Mapping[str, Any]) -> str:
    header = ("scenario", "figure", "unit", "median", "min", "max", "target", "result")
    lines = [header]
    for row in summary["figures"]:
        result = "-" if row["pass"] is None else "PASS" if row["pass"] else "FAIL"
        lines.append(
            (
                row["scenario"],
                row["label"],
                row["unit"],
                _number(row["median"]),
                _number(row["min"]),
                _number(row["max"]),
                row["target"] or "",
                result,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines]
    rendered.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(rendered)
