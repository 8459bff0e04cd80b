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

With `secure_delete` on, deleted rows are zeroed in the pages that held them, and the
store checkpoints the WAL when a purge or a delete ends, so no deleted text stays
recoverable from the file (docs/lifecycle.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from chatkeep.store.base import Cutoffs, PurgeCount
from chatkeep.store.sqlite_driver import sqlite3

# Rows per write transaction: the first batch's, and the bounds of the later ones, which
# are sized to take about TARGET_SECONDS each (at most doubling from one to the next). A
# completion with its words in the search index costs about 4-30 ms to delete
# (bench/README.md), so the first batch is a few rows and the smallest is one.
FIRST_BATCH = 4
MIN_BATCH, MAX_BATCH = 1, 5000
TARGET_SECONDS = 0.05
# The store's reader and writer: each runs a function on a connection of its own.
Run = Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
Batch = Callable[[sqlite3.Connection, str, str, int], int]

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
        found[name] = await _project(read, write, name, cutoffs(name), dry_run)
    if not dry_run and any(c.records or c.content for c in found.values()):
        await write(checkpoint)
    return found


async def _project(
    read: Run, write: Run, project: str, cutoffs: Cutoffs, dry_run: bool
) -> PurgeCount:
    if dry_run:
        counted: PurgeCount = await read(lambda conn: count(conn, project, cutoffs))
        return counted
    done = PurgeCount()
    if cutoffs.records_before is not None:
        done.records = await _batches(write, records_batch, project, cutoffs.records_before)
    if cutoffs.content_before is not None:
        done.content = await _batches(write, content_batch, project, cutoffs.content_before)
    return done


async def _batches(write: Run, batch: Batch, project: str, before: str) -> int:
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
        await asyncio.sleep(took)  # the writer's turn for everyone else
        limit = next_limit(limit, took)


def next_limit(limit: int, took: float) -> int:
    """The next batch's rows: this one's scaled to TARGET_SECONDS, within the bounds."""
    scaled = limit * 2 if took <= 0 else int(limit * TARGET_SECONDS / took)
    return max(MIN_BATCH, min(MAX_BATCH, limit * 2, scaled))


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
    return len(ids)


def _oldest(
    conn: sqlite3.Connection, table: str, project: str, before: str, limit: int
) -> list[str]:
    return [row[0] for row in conn.execute(_OLDEST.format(table=table), (project, before, limit))]
