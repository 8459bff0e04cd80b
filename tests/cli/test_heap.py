"""The serving process's collector: what is alive at start-up frozen, young passes rarer,
and cycles made afterwards still collected."""

from __future__ import annotations

import gc
import weakref

from chatkeep.cli import heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_settle_freezes_the_start_up_heap_and_still_collects_later_cycles() -> None:
    before = gc.get_threshold()
    try:
        heap.settle()
        assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *heap.OLDER_THRESHOLDS)
        assert gc.get_freeze_count() > 0
        first, second = _Node(), _Node()
        first.other, second.other = second, first  # a cycle: only the collector frees it
        gone = weakref.ref(first)
        del first, second
        assert gone() is not None  # far from the young threshold: not collected yet
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
