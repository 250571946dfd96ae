"""The garbage collector's view of the long-lived heap: frozen after each sweep, thawed once an hour.

With 50,000 alerts held, a full collection walks every tracked object (~570,000) and stalls the event loop
for ~250 ms (README, Performance). What survives a sweep is mostly the store's long-lived models, so it is
moved out of the collector's view with ``gc.freeze()`` (Python docs, gc.freeze: frozen objects are still
freed by reference counting, but never by the cycle collector). A frozen object that later becomes part of
unreachable cycle would never be reclaimed, so every ``thaw_every`` sweeps everything is thawed and
collected once: the leak is bounded by one period, and the full pause comes once a period, not at random.

A full listing (a restart over 50,000 alerts) is collected and frozen as it arrives, every ``listed_batch``
objects, each collection walking only that batch: else
each growth of the heap by a quarter (CPython's rule for the oldest generation) set off a full collection
of everything stored so far, 19 of them in one such restart, 0.2-0.9 s each (measured with gc.callbacks).
"""

from __future__ import annotations

import gc


class HeapKeeper:
    """Call ``after_sweep()`` at the end of every sweep, on the event loop."""

    def __init__(self, thaw_every: int, listed_batch: int = 1000) -> None:
        self._thaw_every = max(1, thaw_every)
        self._sweeps = 0
        self._listed_batch = max(1, listed_batch)
        self._listed = 0

    def listed(self) -> bool:
        """One object of a full listing was stored; returns True when this froze the batch it completed."""
        self._listed += 1
        if self._listed % self._listed_batch:
            return False
        # Everything older is frozen already, so this collection walks only the batch: its garbage (kopf's
        # per-object cycles) is reclaimed rather than frozen with it.
        gc.collect()
        gc.freeze()
        return True

    def after_sweep(self) -> bool:
        """Collect what is garbage now, then freeze the survivors; returns True on a thawing sweep."""
        self._sweeps += 1
        thaw = self._sweeps % self._thaw_every == 0
        if thaw:
            gc.unfreeze()
        gc.collect()
        gc.freeze()
        return thaw
