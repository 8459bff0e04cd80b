"""Retention on the SQLite store: bounded batches, each its own short write transaction.

Each batch takes the oldest ids below a cutoff and deletes their id range, so a purge of
any size holds the writer for one batch at a time and creates queue behind a batch, never
behind the whole purge. A batch is bounded in time, not only in rows: what one row costs
to delete varies from a fraction of a millisecond (a record whose content went before) to
tens of milliseconds (a completion whose words FTS5's secure-delete takes out of every
page of the search index that holds them: `search_index`), so a fixed batch of rows could
hold the writer for seconds, which every create would wait. So the first batch is small,
each next one is sized from the last one's time, aiming at `TARGET_SECONDS`, and
the purge then pauses as long as the batch took: creates queued meanwhile commit between
two batches instead of behind a run of them, and a purge takes at most half of the
writer's time.

A purge that removes many completions first merges the search index into one segment,
which makes each delete several times cheaper (`sqlite_search_upkeep`), in slices sized
the same way. While a purge runs, the writer does not checkpoint the WAL itself: a reader
connection copies it into the file during each pause (a passive checkpoint, which takes
no lock a writer needs), so the checkpoint's I/O is off the writer's time and the WAL
stays bounded.

With `secure_delete` on, deleted rows are zeroed in the pages that held them, and the
store checkpoints the WAL when a purge or a delete ends, so no deleted text stays
recoverable from the file (docs/lifecycle.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

from chatkeep.store import sqlite_search_upkeep as upkeep
from chatkeep.store.base import Cutoffs, PurgeCount
from chatkeep.store.sqlite_driver import sqlite3

# Rows per write transaction: the first batch's, and the bounds of the later ones, which
# are sized to take about TARGET_SECONDS each (at most doubling from one to the next). A
# completion with its words in the search index costs about 4-30 ms to delete
# (bench/README.md), so the first batch is a few rows and the smallest is one.
FIRST_BATCH = 4
MIN_BATCH, MAX_BATCH = 1, 5000
TARGET_SECONDS = 0.05
logger = logging.getLogger(__name__)
# The store's reader and writer: each runs a function on a connection of its own.
Run = Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
Batch = Callable[[sqlite3.Connection, str, str, int], int]
# The writer's own WAL checkpoints when no purge runs: SQLite's default, in pages.
AUTOCHECKPOINT_PAGES = 1000

# Each project holding completions, by a walk of the primary key that jumps from one
# project to the next instead of reading every row.
PROJECTS_SQL = """
WITH RECURSIVE p(name) AS (
    SELECT min(project) FROM completions
    UNION ALL
    SELECT (SELECT min(project) FROM completions WHERE project > p.name)
    FROM p WHERE p.name IS NOT NULL
)
SELECT name FROM p WHERE name IS NOT NULL
"""
_OLDEST = "SELECT id FROM {table} WHERE project = ? AND id < ? ORDER BY id LIMIT ?"
_COUNT = "SELECT count(*) FROM {table} WHERE project = ? AND id < ?"


async def purge(
    read: Run,
    write: Run,
    checkpoint: Callable[[sqlite3.Connection], None],
    cutoffs: Callable[[str], Cutoffs],
    project: str | None,
    dry_run: bool,
) -> dict[str, PurgeCount]:
    """Purge (or count) every project's completions below its cutoffs, a batch per write;
    then checkpoint the WAL once, so no deleted text stays in either file."""
    names = [project] if project is not None else await read(projects)
    found: dict[str, PurgeCount] = {}
    for name in names:
        found[name] = await read(partial(count, project=name, cutoffs=cutoffs(name)))
    rows = sum(c.records + c.content for c in found.values())
    if dry_run or not rows:
        return found
    clock = time.perf_counter()
    async with _checkpoints_by_readers(read, write) as pause:
        index = await read(upkeep.shape)
        merging = upkeep.worth_merging(rows, index)
        if merging:
            await _merge(write, pause, index.pages)
        merged, clock = time.perf_counter() - clock, time.perf_counter()
        for name in names:
            found[name] = await _project(write, pause, name, cutoffs(name))
    await write(checkpoint)
    logger.info(
        "purge phases: search index of %d segments (about %d pages) %s in %.3f s, "
        "%d rows in batches in %.3f s",
        index.segments,
        index.pages,
        "merged" if merging else "not merged (it would not pay)",
        merged,
        rows,
        time.perf_counter() - clock,
    )
    return found


Pause = Callable[[float], Awaitable[None]]


@contextlib.asynccontextmanager
async def _checkpoints_by_readers(read: Run, write: Run) -> AsyncIterator[Pause]:
    """The writer's automatic checkpoints off for the block; the pause it yields waits
    `seconds` while a reader checkpoints the WAL."""

    def autocheckpoint(pages: int) -> Callable[[sqlite3.Connection], object]:
        return lambda conn: conn.execute(f"PRAGMA wal_autocheckpoint = {pages}").fetchall()

    async def pause(seconds: float) -> None:
        await asyncio.gather(asyncio.sleep(seconds), read(_passive_checkpoint))

    await write(autocheckpoint(0))
    try:
        yield pause
    finally:
        await write(autocheckpoint(AUTOCHECKPOINT_PAGES))


def _passive_checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


async def _project(write: Run, pause: Pause, project: str, cutoffs: Cutoffs) -> PurgeCount:
    done = PurgeCount()
    if cutoffs.records_before is not None:
        done.records = await _batches(write, pause, records_batch, project, cutoffs.records_before)
    if cutoffs.content_before is not None:
        done.content = await _batches(write, pause, content_batch, project, cutoffs.content_before)
    return done


async def _batches(write: Run, pause: Pause, batch: Batch, project: str, before: str) -> int:
    """Run `batch` until it comes back short: one write transaction per batch, each sized
    from the time the last one took."""
    total, limit = 0, FIRST_BATCH

    def timed(conn: sqlite3.Connection) -> tuple[int, float]:
        began = time.perf_counter()
        done = batch(conn, project, before, limit)
        return done, time.perf_counter() - began

    while True:
        outcome: tuple[int, float] = await write(timed)
        done, took = outcome
        total += done
        if done < limit:
            return total
        await pause(took)  # the writer's turn for everyone else
        limit = next_limit(limit, took)


async def _merge(write: Run, pause: Pause, pages: int) -> None:
    """Merge the search index toward one segment in timed slices, until nothing is left to
    merge or about one rewrite of the index is done (the indexer adds small segments
    meanwhile, which later slices merge in turn)."""
    budget, size = pages + pages // 4, upkeep.FIRST_SLICE

    def timed(conn: sqlite3.Connection) -> tuple[bool, float]:
        began = time.perf_counter()
        merged = upkeep.merge_slice(conn, size)
        return merged, time.perf_counter() - began

    while budget > 0:
        outcome: tuple[bool, float] = await write(timed)
        merged, took = outcome
        budget -= size
        if not merged:
            return
        await pause(took)
        size = next_limit(size, took, upkeep.FIRST_SLICE // 4, upkeep.MAX_SLICE)


def next_limit(limit: int, took: float, low: int = MIN_BATCH, high: int = MAX_BATCH) -> int:
    """The next batch's size: this one's scaled to TARGET_SECONDS, within the bounds."""
    scaled = limit * 2 if took <= 0 else int(limit * TARGET_SECONDS / took)
    return max(low, min(high, limit * 2, scaled))


def projects(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute(PROJECTS_SQL)]


def count(conn: sqlite3.Connection, project: str, cutoffs: Cutoffs) -> PurgeCount:
    """What a purge would remove: records below their cutoff, and content below its own
    that is not already counted with its record."""
    found = PurgeCount()
    records_before = cutoffs.records_before
    if records_before is not None:
        found.records = _count(conn, "completions", project, records_before)
    content_before = cutoffs.content_before
    if content_before is not None:
        if records_before is not None and records_before >= content_before:
            return found
        content = _count(conn, "completion_content", project, content_before)
        if records_before is not None:
            content -= _count(conn, "completion_content", project, records_before)
        found.content = content
    return found


def _count(conn: sqlite3.Connection, table: str, project: str, before: str) -> int:
    total: int = conn.execute(_COUNT.format(table=table), (project, before)).fetchone()[0]
    return total


def records_batch(conn: sqlite3.Connection, project: str, before: str, limit: int) -> int:
    """Remove up to `limit` of the oldest records below `before`, with their content and
    filter rows (ON DELETE CASCADE); return how many."""
    ids = _oldest(conn, "completions", project, before, limit)
    if ids:
        conn.execute(
            "DELETE FROM completions WHERE project = ? AND id BETWEEN ? AND ?",
            (project, ids[0], ids[-1]),
        )
        flush_search_index(conn)
    return len(ids)


def content_batch(conn: sqlite3.Connection, project: str, before: str, limit: int) -> int:
    """Drop the content (and filter rows) of up to `limit` of the oldest completions below
    `before`, keeping their records; return how many."""
    ids = _oldest(conn, "completion_content", project, before, limit)
    if ids:
        span = (project, ids[0], ids[-1])
        conn.execute(
            "DELETE FROM completion_content WHERE project = ? AND id BETWEEN ? AND ?", span
        )
        conn.execute(
            "DELETE FROM completion_metadata WHERE project = ? AND completion_id BETWEEN ? AND ?",
            span,
        )
        flush_search_index(conn)
    return len(ids)


def flush_search_index(conn: sqlite3.Connection) -> None:
    """Have FTS5 apply the deletes it holds now, in the batch's time. It keeps them in
    memory until the transaction commits or a savepoint opens, and with secure-delete
    applying them is most of a batch's cost: timed without it, 50 rows took 5 ms and their
    commit 885 ms, so batches grew to thousands of rows and held the writer for seconds
    (creates waited up to 11 s in bench/sqlite_purge.py at 1,000,000)."""
    conn.execute("SAVEPOINT chatkeep_search_flush")
    conn.execute("RELEASE chatkeep_search_flush")


def _oldest(
    conn: sqlite3.Connection, table: str, project: str, before: str, limit: int
) -> list[str]:
    return [row[0] for row in conn.execute(_OLDEST.format(table=table), (project, before, limit))]
