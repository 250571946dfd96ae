"""Fault injection and request accounting of the API stand-in: what tests ask it to do wrong, and what it served."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict


class RequestMatch(TypedDict, total=False):
    """Which requests a fault or a count applies to; a key left out (or None) matches anything.

    `subresource=""` matches only requests to the main resource.
    """

    verb: str | None
    resource: str | None
    subresource: str | None


def matches(match: RequestMatch, verb: str, resource: str | None, subresource: str | None) -> bool:
    wanted_verb, wanted_resource = match.get("verb"), match.get("resource")
    wanted_subresource = match.get("subresource")
    return (
        (wanted_verb is None or wanted_verb == verb)
        and (wanted_resource is None or wanted_resource == resource)
        and (wanted_subresource is None or wanted_subresource == (subresource or ""))
    )


@dataclass
class RecordedCall:
    """One request the stand-in answered; never its body (Secrets travel in bodies).

    The `sent_*` fields count the object bodies the response carried (a get or write: one; a list: its
    items; a watch: every ADDED/MODIFIED/DELETED event, growing while the stream is open): how many, their
    JSON size in bytes, and their `namespace/name`.
    """

    method: str
    path: str
    verb: str
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    status: int
    at: float
    sent_objects: int = 0
    sent_bytes: int = 0
    sent_names: list[str] = field(default_factory=list)

    def count_sent(self, objects: Iterable[Mapping[str, Any]], size: int) -> None:
        """Note object bodies the response carried, `size` the bytes of their JSON together."""
        names = [f"{m['namespace']}/{m['name']}" if m.get("namespace") else m["name"] for m in _metadata(objects)]
        self.sent_names.extend(names)
        self.sent_objects += len(names)
        self.sent_bytes += size


def _metadata(objects: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    return (obj["metadata"] for obj in objects)


@dataclass(frozen=True)
class BodiesSent:
    """Object bodies of one resource sent to clients: how many, their bytes, and which (`namespace/name`)."""

    objects: int
    bytes: int
    names: frozenset[str]


def bodies_sent(calls: Iterable[RecordedCall]) -> BodiesSent:
    objects = size = 0
    names: set[str] = set()
    for call in calls:
        objects += call.sent_objects
        size += call.sent_bytes
        names.update(call.sent_names)
    return BodiesSent(objects, size, frozenset(names))


@dataclass
class _Fault:
    remaining: int
    match: RequestMatch
    status: int | None = None
    # Seconds to hold the request before serving it; infinite until released.
    hold: float = 0.0


class FaultPlan:
    """The faults tests have asked for, taken by the requests they match (thread-safe)."""

    def __init__(self) -> None:
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def fail(self, count: int, status: int, match: RequestMatch) -> None:
        with self._lock:
            self._faults.append(_Fault(count, match, status=status))

    def hold(self, count: int, seconds: float, match: RequestMatch) -> None:
        with self._lock:
            self._faults.append(_Fault(count, match, hold=seconds))

    def take(self, verb: str, resource: str, subresource: str | None) -> tuple[int | None, float]:
        """The status to fail with (None: serve normally) and the seconds to hold first (0: none)."""
        status, hold = None, 0.0
        with self._lock:
            for fault in self._faults:
                if fault.remaining <= 0 or not matches(fault.match, verb, resource, subresource):
                    continue
                if fault.status is not None and status is None:
                    status = fault.status
                    fault.remaining -= 1
                elif fault.hold and not hold:
                    hold = fault.hold
                    fault.remaining -= 1
            self._faults = [f for f in self._faults if f.remaining > 0]
        return status, hold
