"""The heap keeper: survivors of a sweep are frozen; every thaw_every-th sweep thaws and collects everything."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from incidentio_operator.controller.heap import HeapKeeper


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_a_cycle_that_dies_while_frozen_is_reclaimed_at_the_next_thaw() -> None:
    keeper = HeapKeeper(thaw_every=3)
    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    assert keeper.after_sweep() is False
    assert gc.get_freeze_count() > 0
    del a, b  # unreachable cyclic garbage now, but frozen: the cycle collector does not see it
    assert keeper.after_sweep() is False
    assert alive() is not None
    assert keeper.after_sweep() is True
    assert alive() is None


def test_garbage_of_a_sweep_is_collected_before_the_freeze() -> None:
    keeper = HeapKeeper(thaw_every=100)
    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    del a, b
    keeper.after_sweep()
    assert alive() is None


def test_a_full_listing_is_collected_and_frozen_batch_by_batch() -> None:
    gc.unfreeze()
    keeper = HeapKeeper(thaw_every=100, listed_batch=3)
    stored = [Node() for _ in range(10)]
    a, b = Node(), Node()
    a.other, b.other = b, a
    garbage = weakref.ref(a)
    del a, b
    assert [keeper.listed() for _ in range(6)] == [False, False, True, False, False, True]
    # What was stored is out of the collector's view; the batch's garbage was reclaimed, not frozen with it.
    assert gc.get_freeze_count() >= len(stored)
    assert garbage() is None
