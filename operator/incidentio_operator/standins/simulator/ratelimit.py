"""incident.io's per-key rate limit: a continuously refilled token bucket and the headers that report it."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate


@dataclass(frozen=True)
class RateDecision:
    """The outcome of asking the bucket for one request, with what the headers report."""

    allowed: bool
    limit: int
    remaining: int
    window_seconds: int
    seconds_until_next: float  # until one token is back; 0 when allowed
    seconds_until_full: float

    def headers(self, wall_now: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": f"{self.limit}, {self.limit};window={self.window_seconds}",
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Used": str(self.limit - self.remaining),
            "X-RateLimit-Reset": str(math.ceil(wall_now + self.seconds_until_full)),
        }


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """One token bucket per API key name; capacity and refill are read per call so tests can change them."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, bucket_name: str, capacity: int, refill_per_second: float) -> RateDecision:
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(bucket_name)
            if bucket is None:
                bucket = self._buckets[bucket_name] = _Bucket(tokens=float(capacity), updated=now)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(capacity), bucket.tokens + elapsed * refill_per_second)
            bucket.updated = now
            allowed = bucket.tokens >= 1.0
            if allowed:
                bucket.tokens -= 1.0
            tokens = bucket.tokens
        return RateDecision(
            allowed=allowed,
            limit=capacity,
            remaining=max(0, math.floor(tokens)),
            window_seconds=max(1, round(capacity / refill_per_second)),
            seconds_until_next=0.0 if allowed else (1.0 - tokens) / refill_per_second,
            seconds_until_full=(capacity - tokens) / refill_per_second,
        )

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


def retry_after_header(wait_seconds: float, form: str, wall_now: float) -> str:
    """``Retry-After`` as whole seconds rounded up, or as an RFC 7231 IMF-fixdate."""
    if form == "http-date":
        return formatdate(math.ceil(wall_now + wait_seconds), usegmt=True)
    return str(max(1, math.ceil(wait_seconds)))


def rfc3339(timestamp: float) -> str:
    """A UTC timestamp in the ``2025-04-17T11:17:18Z`` form incident.io uses in bodies."""
    return datetime.fromtimestamp(math.ceil(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
