"""Client-side pacing per API key and per alert source: token buckets like incident.io's, slots served in order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class RateLimit:
    """incident.io's published limit: a bucket of `per_minute` requests, refilled continuously."""

    per_minute: int = 1200
    refill_per_second: float = 20.0

    def __post_init__(self) -> None:
        if self.per_minute < 1 or self.refill_per_second <= 0:
            raise ValueError("a rate limit needs a bucket of at least 1 and a positive refill rate")


# incident.io: "We apply a rate limit of 120 events/minute for each alert source", answered with 429 when
# exceeded (https://docs.incident.io/incidents/auto-create, "Every alert source is rate limited"). The page
# gives no bucket shape; this paces as a bucket of 120 refilled at 2/s, the same rate on average.
ALERT_SOURCE_RATE_LIMIT = RateLimit(per_minute=120, refill_per_second=2.0)
# The share of a bucket that background callers leave to foreground ones: a burst of updates never
# empties it, so the creates that follow still go at once.
BACKGROUND_RESERVE = 0.1


class Priority(Enum):
    """Which caller a key's slots go to first: work someone waits for, before work that keeps things current."""

    # Creates, closes, connection tests: served in arrival order, ahead of every background caller.
    FOREGROUND = "foreground"
    # Edits that keep an open incident current, reads of open incidents: they wait behind every foreground
    # caller of the key, and leave BACKGROUND_RESERVE of its bucket to them.
    BACKGROUND = "background"


class TokenBucket:
    """One key's allowance; tokens may go negative, each negative token being a caller's reserved slot.

    A caller takes a token at once and learns exactly when its slot comes, so waiting is first come,
    first served, and each waiter sleeps once instead of polling. When the server says the bucket is
    empty, every pending slot moves later by the same amount (`shift`), keeping their order.

    Requests still in flight may not have reached the server yet, and until they do its bucket can sit
    full and stop refilling; so tokens plus requests in flight never refill past the capacity. Without
    that, a burst (or a lull where the server answers slower than the refill) lets this bucket bank
    tokens the server never had, and the next burst is answered with 429s.

    Background callers (``Priority.BACKGROUND``) queue behind foreground ones: they take a token only
    while the bucket holds more than its reserve, and a foreground caller that arrives while they wait
    takes the first of their slots, moving each of theirs one refill interval later (``background_shift``).
    """

    def __init__(self, limit: RateLimit, now: float) -> None:
        self._capacity = float(limit.per_minute)
        self._rate = limit.refill_per_second
        self._tokens = self._capacity
        self._updated = now
        self._reserve = float(int(limit.per_minute * BACKGROUND_RESERVE))
        self.waiting = 0
        self.shift = 0.0
        self.in_flight = 0
        self.background_waiting = 0
        self.background_shift = 0.0

    @property
    def refill_interval(self) -> float:
        return 1.0 / self._rate

    def reserve(self, now: float, priority: Priority = Priority.FOREGROUND) -> float:
        """Take a token; returns how long from `now` until the caller's slot (0 when it may go now)."""
        self.refill(now)
        if priority is Priority.BACKGROUND:
            self._tokens -= 1.0
            level = self._tokens - self._reserve
        else:
            # Counted as if the background callers still waiting had reserved nothing: this caller goes first.
            level = self._tokens + self.background_waiting - 1.0
            self._tokens -= 1.0
            if self.background_waiting:
                self.background_shift += 1.0 / self._rate
        return 0.0 if level >= 0 else -level / self._rate

    def refund(self, now: float) -> None:
        """Give back a reserved token whose caller gave up before its slot."""
        self.refill(now)
        self._tokens = min(self._capacity, self._tokens + 1.0)

    def pause(self, now: float, seconds: float) -> None:
        """The server says the bucket is empty and one request succeeds `seconds` from now."""
        self.refill(now)
        # One token at now + seconds, behind every caller already waiting for a slot.
        self._lower_to(1.0 - seconds * self._rate - self.waiting)

    def _lower_to(self, tokens: float) -> None:
        if tokens < self._tokens:
            self.shift += (self._tokens - tokens) / self._rate
            self._tokens = tokens

    def refill(self, now: float) -> None:
        if now > self._updated:
            # Never below zero, so reserved slots (negative tokens) keep the refill they were promised.
            ceiling = max(0.0, self._capacity - self.in_flight)
            if self._tokens < ceiling:
                self._tokens = min(ceiling, self._tokens + (now - self._updated) * self._rate)
            self._updated = now


class RateLimiter:
    """A token bucket per key (an API key, or an alert source), so different keys never wait for each other."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._limit = limit
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[Hashable, TokenBucket] = {}

    def bucket(self, key: Hashable) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._limit, self._clock())
        return bucket

    async def acquire(self, key: Hashable, priority: Priority = Priority.FOREGROUND) -> float:
        """Wait for this key's next slot for a caller of this priority; returns the seconds waited.

        Pair with `release`.
        """
        bucket = self.bucket(key)
        start = self._clock()
        delay = bucket.reserve(start, priority)
        if delay <= 0:
            bucket.in_flight += 1
            return 0.0
        background = priority is Priority.BACKGROUND
        slot, shift, pushed = start + delay, bucket.shift, bucket.background_shift
        bucket.waiting += 1
        bucket.background_waiting += background
        try:
            while (remaining := slot + self._moved(bucket, shift, pushed, background) - self._clock()) > 0:
                await self._sleep(remaining)
        except BaseException:
            bucket.refund(self._clock())
            raise
        finally:
            bucket.waiting -= 1
            bucket.background_waiting -= background
        bucket.in_flight += 1
        return self._clock() - start

    @staticmethod
    def _moved(bucket: TokenBucket, shift: float, pushed: float, background: bool) -> float:
        """How far a waiter's slot moved since it reserved: 429 pauses, and for background callers, the
        foreground callers that went ahead."""
        return bucket.shift - shift + (bucket.background_shift - pushed if background else 0.0)

    def release(self, key: Hashable) -> None:
        """The request that `acquire` let through has its answer (or failed): it is no longer in flight."""
        bucket = self.bucket(key)
        bucket.refill(self._clock())
        bucket.in_flight -= 1

    def pause(self, key: Hashable, seconds: float | None) -> None:
        """Hold back every caller of this key: incident.io answered 429, so its bucket is empty.

        Without a usable wait from the server, assume one refill interval.
        """
        bucket = self.bucket(key)
        bucket.pause(self._clock(), bucket.refill_interval if seconds is None else max(0.0, seconds))
