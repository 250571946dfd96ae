"""The garbage collector's view of the long-lived heap: frozen after each sweep, thawed once an hour.

With 50,000 alerts held, a full collection walks every tracked object (~570,000) and stalls the event loop
for ~250 ms (README, Performance). What survives a sweep is mostly the store's long-lived models, so it is
moved out of the collector's view with ``gc.freeze()`` (Python docs, gc.freeze: frozen objects are still
freed by reference counting, but never by the cycle collector). A frozen object that later becomes part of
unreachable cycle would never be reclaimed, so every ``thaw_every`` sweeps everything is thawed and
collected once: the leak is bounded by one period, and the full pause comes once a period, not at random.
"""

from __future__ import annotations

import gc


class HeapKeeper:
    """Call ``after_sweep()`` at the end of every sweep, on the event loop."""

    def __init__(self, thaw_every: int) -> None:
        self._thaw_every = max(1, thaw_every)
        self._sweeps = 0

    def after_sweep(self) -> bool:
        """Collect what is garbage now, then freeze the survivors; returns True on a thawing sweep."""
        self._sweeps += 1
        thaw = self._sweeps % self._thaw_every == 0
        if thaw:
            gc.unfreeze()
        gc.collect()
        gc.freeze()
        return thaw
