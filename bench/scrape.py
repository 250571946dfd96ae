"""The operator's own Prometheus endpoint, read by the bench: its event-loop lag histogram, between two scrapes."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import httpx
import prometheus_client
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

LAG = "incidentio_operator_event_loop_lag_seconds"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts by upper bound (seconds, ``inf`` last), as Prometheus exposes them."""

    buckets: tuple[tuple[float, float], ...]

    def since(self, earlier: Histogram) -> Histogram:
        before = dict(earlier.buckets)
        return Histogram(tuple((bound, count - before.get(bound, 0.0)) for bound, count in self.buckets))

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def quantile(self, q: float) -> float:
        """The upper bound of the bucket holding the q-th quantile (0 < q <= 1): an upper bound on it, in seconds."""
        wanted = q * self.count
        for bound, count in self.buckets:
            if count >= wanted:
                return bound
        return float("inf")

    def maximum(self) -> float:
        """The upper bound of the highest bucket that holds any sample (seconds); ``inf`` past the last bound."""
        return self.quantile(1.0)


def local_histogram(histogram: prometheus_client.Histogram) -> Histogram:
    """A histogram of this process (e.g. the stand-in's loop lag), read as a scrape would read it."""
    buckets = [
        (float(sample.labels["le"]), sample.value)
        for family in histogram.collect()
        for sample in family.samples
        if sample.name.endswith("_bucket")
    ]
    return Histogram(tuple(sorted(buckets)))


def _families(port: int) -> list[Metric]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10.0).text
    return list(text_string_to_metric_families(text))


def total(port: int, name: str) -> float:
    """The sum over every label set of the operator's metric ``name`` (a counter's ``_total``), scraped now."""
    return sum(s.value for f in _families(port) for s in f.samples if s.name == name)


def lag_histogram(port: int) -> Histogram:
    """The operator's event-loop lag histogram as scraped now from ``http://127.0.0.1:port/metrics``."""
    for family in _families(port):
        if family.name == LAG:
            buckets = [
                (float(sample.labels["le"]), sample.value)
                for sample in family.samples
                if sample.name.endswith("_bucket")
            ]
            return Histogram(tuple(sorted(buckets)))
    raise LookupError(f"{LAG} is not among the operator's metrics")
