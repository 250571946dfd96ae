"""Which incident.io calls may go out now: call slots per destination, holds after a refused key, parked alerts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from incidentio_operator.api import ALERTS, DESTINATIONS, ObjectRef
from incidentio_operator.controller.workqueue import ObjectKey, WorkQueue


class CallGate:
    """Per destination: calls in flight, whether its key was refused, and the alerts parked until it can take more.

    A destination whose calls wait on its rate limit must not take every worker from the others, so
    each has a number of call slots; an alert that would exceed them parks and is woken when one is
    free. The first 401/403 *holds* the destination: no further call goes to it until a connection
    test started after the refusal has written its status, so a revoked key costs one refused call
    per worker at most.
    """

    def __init__(self, queue: WorkQueue[ObjectKey], slots: int) -> None:
        self._queue = queue
        self._slots = slots
        self._in_flight: dict[ObjectRef, int] = {}
        self._parked: dict[ObjectRef, dict[ObjectRef, None]] = {}
        self._held: set[ObjectRef] = set()
        self._holds: dict[ObjectRef, int] = {}
        self._test_wanted: set[ObjectRef] = set()

    def park(self, alert: ObjectRef, destinations: Iterable[ObjectRef]) -> bool:
        """Park the alert if a destination it must call is held or has every call slot taken.

        Checked once, before the write that records the attempt: an alert past it makes its calls, so a
        hold costs at most the one call each worker already had under way.
        """
        for destination in destinations:
            if destination in self._held or self._in_flight.get(destination, 0) >= self._slots:
                self._parked.setdefault(destination, {})[alert] = None
                return True
        return False

    @contextmanager
    def calling(self, destinations: Iterable[ObjectRef]) -> Iterator[None]:
        """Take one call slot per destination named (once per call) for the duration of the calls."""
        taken = list(destinations)
        for destination in taken:
            self._in_flight[destination] = self._in_flight.get(destination, 0) + 1
        try:
            yield
        finally:
            for destination in taken:
                self._in_flight[destination] -= 1
                self._wake(destination)

    def hold(self, destination: ObjectRef) -> None:
        """Stop calls to a destination that refused the API key, and have its connection test say why."""
        self._held.add(destination)
        self._holds[destination] = self._holds.get(destination, 0) + 1
        self._test_wanted.add(destination)
        self._queue.add((DESTINATIONS, destination))

    def holds(self, destination: ObjectRef) -> int:
        """How many times the destination has been held: a test compares it before and after it runs."""
        return self._holds.get(destination, 0)

    def held(self, destination: ObjectRef) -> bool:
        return destination in self._held

    def take_test_request(self, destination: ObjectRef) -> bool:
        """True once after a hold: the next reconciliation of the destination must run its connection test."""
        if destination in self._test_wanted:
            self._test_wanted.discard(destination)
            return True
        return False

    def release(self, destination: ObjectRef) -> None:
        """Lift a hold: every alert parked on the destination plans again against its new status."""
        self._held.discard(destination)
        for alert in self._parked.pop(destination, {}):
            self._queue.add((ALERTS, alert))

    def forget(self, destination: ObjectRef) -> None:
        """The destination is gone: wake what was parked on it and keep no state for it."""
        self.release(destination)
        self._holds.pop(destination, None)
        self._test_wanted.discard(destination)
        if not self._in_flight.get(destination):
            self._in_flight.pop(destination, None)

    def _wake(self, destination: ObjectRef) -> None:
        """Queue as many parked alerts as the destination has free call slots.

        Waking by free slots rather than one per finished call means an alert that, once woken, has
        no call left to make (resolved meanwhile) cannot strand the ones parked behind it.
        """
        if destination in self._held:
            return
        parked = self._parked.get(destination)
        free = self._slots - self._in_flight.get(destination, 0)
        while parked and free > 0:
            alert = next(iter(parked))
            del parked[alert]
            self._queue.add((ALERTS, alert))
            free -= 1
        if not parked:
            self._parked.pop(destination, None)
        if not self._in_flight.get(destination):
            self._in_flight.pop(destination, None)
