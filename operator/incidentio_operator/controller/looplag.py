"""Event-loop lag: how late a short timer fires on the operator's loop, sampled continuously into a histogram.

Everything the operator does runs on one asyncio loop; any callback that holds it (a sweep over every
alert, a large JSON parse, a garbage collection) delays every watch event and every incident.io call
behind it. The lag of a timer that should fire every ``interval`` seconds measures exactly that delay.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Histogram

INTERVAL = 0.01  # seconds between samples: a 10 ms timer


async def sample_lag(histogram: Histogram, interval: float = INTERVAL) -> None:
    """Observe, forever, how many seconds each ``interval``-second sleep overran (never negative)."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        histogram.observe(max(0.0, loop.time() - due))
