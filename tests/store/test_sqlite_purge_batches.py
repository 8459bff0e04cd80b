"""SQLite purge batches are sized by time: each aims at TARGET_SECONDS, within bounds."""

from __future__ import annotations

from chatkeep.store.sqlite_purge import MAX_BATCH, MIN_BATCH, TARGET_SECONDS, next_limit


def test_a_slow_batch_makes_the_next_one_smaller_and_a_fast_one_larger_at_most_twice() -> None:
    assert next_limit(2000, TARGET_SECONDS * 10) == 200
    assert next_limit(200, TARGET_SECONDS) == 200
    assert next_limit(200, TARGET_SECONDS / 10) == 400  # at most doubling
    assert next_limit(200, 0.0) == 400


def test_the_bounds_hold() -> None:
    assert next_limit(MIN_BATCH, 100.0) == MIN_BATCH
    assert next_limit(MAX_BATCH, 0.0) == MAX_BATCH
