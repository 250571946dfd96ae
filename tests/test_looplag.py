"""The event-loop lag sampler: every overrun of its 10 ms timer lands in the histogram, a stall as a large one."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Histogram

from incidentio_operator.controller.looplag import sample_lag
from incidentio_operator.controller.metrics import LAG_BUCKETS


def _buckets(histogram: Histogram) -> dict[float, float]:
    return {
        float(sample.labels["le"]): sample.value
        for family in histogram.collect()
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }


def _hold_loop(seconds: float) -> None:
    """A callback that keeps the loop busy, as a long synchronous pass over the store would."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


async def _samples(histogram: Histogram, count: int) -> None:
    """Poll, bounded, until the histogram holds ``count`` samples."""
    for _ in range(2000):
        if _buckets(histogram)[float("inf")] >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"fewer than {count} lag samples")


def test_a_stalled_loop_shows_as_lag_at_least_as_long_as_the_stall() -> None:
    histogram = Histogram("lag_seconds", "", buckets=LAG_BUCKETS, registry=CollectorRegistry())

    async def run() -> None:
        sampler = asyncio.create_task(sample_lag(histogram))
        await _samples(histogram, 3)  # a few samples of an idle loop first
        asyncio.get_running_loop().call_soon(_hold_loop, 0.06)
        await _samples(histogram, 6)
        sampler.cancel()

    asyncio.run(asyncio.wait_for(run(), timeout=30))
    buckets = _buckets(histogram)
    # The timer was due at most 10 ms into the 60 ms stall: one sample is late by 50 ms or more.
    assert buckets[float("inf")] - buckets[0.025] >= 1
    assert all(value >= 0 for value in buckets.values())
