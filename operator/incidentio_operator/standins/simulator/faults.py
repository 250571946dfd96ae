"""Fault injection: planned failures, hangs, slow answers, lost responses and seeded random faults."""

from __future__ import annotations

import random as random_module
import threading
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["fail", "hang", "slow", "lose_response"]


@dataclass(frozen=True)
class Fault:
    """What to do to one request."""

    kind: FaultKind
    status: int = 503
    seconds: float = 0.0
    retry_after: str | None = None


@dataclass
class _Planned:
    fault: Fault
    remaining: int
    operation: str | None


@dataclass
class _RandomFaults:
    error_rate: float
    status: int
    hang_rate: float
    hang_seconds: float
    operation: str | None
    rng: random_module.Random


class Faults:
    """Faults to inject, consumed in the order they were planned; safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: list[_Planned] = []
        self._random: _RandomFaults | None = None

    def fail_next(
        self, count: int, *, status: int = 503, operation: str | None = None, retry_after: str | None = None
    ) -> None:
        """The next ``count`` calls answer ``status`` with an error envelope, doing nothing."""
        self._plan(Fault("fail", status=status, retry_after=retry_after), count, operation)

    def hang_next(self, count: int, *, seconds: float, operation: str | None = None) -> None:
        """The next ``count`` calls hold the request open for ``seconds``, then answer 504, doing nothing."""
        self._plan(Fault("hang", status=504, seconds=seconds), count, operation)

    def slow_next(self, count: int, *, seconds: float, operation: str | None = None) -> None:
        """The next ``count`` calls wait ``seconds`` and then run normally."""
        self._plan(Fault("slow", seconds=seconds), count, operation)

    def lose_response_next(self, count: int, *, operation: str | None = None) -> None:
        """The next ``count`` calls take effect but answer 502, as if the response were lost on the wire."""
        self._plan(Fault("lose_response", status=502), count, operation)

    def random(
        self,
        *,
        error_rate: float = 0.0,
        status: int = 500,
        hang_rate: float = 0.0,
        hang_seconds: float = 30.0,
        seed: int = 0,
        operation: str | None = None,
    ) -> None:
        """Fail (or hang) a fraction of calls, reproducibly for a given seed and sequence of calls."""
        if error_rate < 0 or hang_rate < 0 or error_rate + hang_rate > 1:
            raise ValueError("error_rate and hang_rate must be non-negative and add up to at most 1")
        with self._lock:
            self._random = _RandomFaults(
                error_rate, status, hang_rate, hang_seconds, operation, random_module.Random(seed)
            )

    def clear(self) -> None:
        with self._lock:
            self._planned.clear()
            self._random = None

    def take(self, operation: str) -> Fault | None:
        """The fault for this call of ``operation``, if any; consumes it."""
        with self._lock:
            for planned in self._planned:
                if planned.operation in (None, operation):
                    planned.remaining -= 1
                    if planned.remaining == 0:
                        self._planned.remove(planned)
                    return planned.fault
            chance = self._random
            if chance is None or chance.operation not in (None, operation):
                return None
            # One draw per eligible call keeps the sequence reproducible whatever the rates.
            draw = chance.rng.random()
            if draw < chance.error_rate:
                return Fault("fail", status=chance.status)
            if draw < chance.error_rate + chance.hang_rate:
                return Fault("hang", status=504, seconds=chance.hang_seconds)
            return None

    def _plan(self, fault: Fault, count: int, operation: str | None) -> None:
        if count <= 0:
            raise ValueError("count must be positive")
        with self._lock:
            self._planned.append(_Planned(fault, count, operation))
