"""Retention on the PostgreSQL store: whole weeks and days dropped, the rest in batches.

A week whose partitions (`postgres_partitions`) every project's window has passed is
dropped: its content and filter rows when every content window has passed it, with its
records too when every record window has. Inside a week of day leaves, each day every
window has passed is dropped the same way, its leaves detached concurrently and dropped
(no row deleted, nothing to vacuum: at 5M completions over 60 days, a day of 83,325 in
0.43 s, bench/README.md). What is left to remove (a cutoff inside a
day, as an hourly run has; a project whose window is shorter than another's; a purge of
one project; a week made before day leaves) goes in batches, each its own short
transaction: the oldest ids below a cutoff, deleted as an id range, so a purge of any size
holds locks on one batch's rows at a time and never on a row a create writes. The leaves
the batches touched (a day's, or a plain week's table) are then vacuumed, so their space
is reused instead of the tables growing; a plain VACUUM does not block reads and writes
(docs/lifecycle.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import date
from functools import partial
from typing import Any

from chatkeep.store import postgres_partitions as partitions
from chatkeep.store.base import Cutoffs, PurgeCount
from chatkeep.store.imports import PURGE_ALIASES_SQL
from chatkeep.store.postgres_faults import Connection
from chatkeep.store.sqlite_purge import PROJECTS_SQL

# The store's `_call`: runs a function on a pooled connection, 503 when unreachable.
Caller = Callable[[Callable[[Connection], Awaitable[Any]]], Awaitable[Any]]
logger = logging.getLogger(__name__)
BATCH = 5000  # rows per transaction

_OLDEST = "SELECT id FROM {table} WHERE project = $1 AND id < $2 ORDER BY id LIMIT $3"
_COUNT = "SELECT count(*) FROM {table} WHERE project = $1 AND id < $2"
_PER_PROJECT = "SELECT project, count(*) FROM {table} GROUP BY project"
# Content rows counted as content only: those whose records this purge keeps (ids at or
# above their project's record cutoff, $1/$2; a project without one keeps them all).
_CONTENT_ONLY = """
SELECT t.project, count(*) FROM {table} AS t
LEFT JOIN unnest($1::text[], $2::text[]) AS r(project, cut) ON r.project = t.project
WHERE r.cut IS NULL OR t.id >= r.cut
GROUP BY t.project
"""


async def purge(
    call: Caller,
    cutoffs: Callable[[str], Cutoffs],
    *,
    project: str | None,
    dry_run: bool,
) -> dict[str, PurgeCount]:
    if project is not None:
        names = [project]
    else:
        rows = await call(lambda conn: conn.fetch(PROJECTS_SQL))
        names = [row[0] for row in rows]
    if dry_run:
        return {name: await _count(call, name, cutoffs(name)) for name in names}
    await call(partitions.finish_detaches)
    await call(lambda conn: partitions.ensure(conn, partitions.weeks_ahead()))
    found = {name: PurgeCount() for name in names}
    clock = time.perf_counter()
    if project is None:
        windows = {name: cutoffs(name) for name in names}
        await call(lambda conn: _drop_weeks(conn, windows, found))
    dropped, clock = time.perf_counter() - clock, time.perf_counter()
    touched: list[tuple[str, str]] = []  # the id ranges batches removed rows from
    for name in names:
        limits, done = cutoffs(name), found[name]
        if limits.records_before is not None:
            done.records += await _batches(
                call, _records_batch, name, limits.records_before, touched
            )
            # The original ids of imported records gone, by batch or with their week.
            await call(partial(_purge_aliases, project=name, before=limits.records_before))
        if limits.content_before is not None:
            done.content += await _batches(
                call, _content_batch, name, limits.content_before, touched
            )
    batches, clock = time.perf_counter() - clock, time.perf_counter()
    if touched:
        await call(lambda conn: _vacuum(conn, touched))
    logger.info(
        "purge phases: partitions dropped in %.3f s, batches in %.3f s, vacuum in %.3f s",
        dropped,
        batches,
        time.perf_counter() - clock,
    )
    return found


def _every(limits: Iterable[str | None]) -> str | None:
    """The id below which every project's window has passed (None: some keep forever)."""
    bounds = list(limits)
    if not bounds or any(bound is None for bound in bounds):
        return None
    return min(bound for bound in bounds if bound is not None)


def _passed(end: str, records_before: str | None, content_before: str | None) -> str | None:
    """What every project's windows have passed of ids below `end`: "records" (all of
    it), "content" (the content and filter rows), or None."""
    if records_before is not None and end <= records_before:
        return "records"
    if content_before is not None and end <= content_before:
        return "content"
    return None


async def _drop_weeks(
    conn: Connection, limits: dict[str, Cutoffs], found: dict[str, PurgeCount]
) -> None:
    """Drop the partitions of each week, and the leaves of each day, that every project's
    window has passed, counting their rows per project first."""
    records_before = _every(cut.records_before for cut in limits.values())
    content_before = _every(cut.content_before for cut in limits.values())
    have = await partitions.layout(conn)
    for week in sorted(have["completions"].keys() | have["completion_content"].keys()):
        end = partitions.week_bounds(week)[1]
        if end is None:  # the catch-all at the end: ids of no week, never "older"
            continue
        what = _passed(end, records_before, content_before)
        if what is not None:
            names = {t: partitions.partition_name(t, week) for t, _ in partitions.TABLES}
            tables = await _count_then_keep(conn, have, (week, None), names, what, limits, found)
            await partitions.drop(conn, tables, week)
            for table in tables:
                del have[table][week]
            if what == "records":
                continue
        # The days of the week that have passed (their records, where the week's content
        # went whole just now).
        for day in partitions.days_of(week) if week != partitions.BEFORE else ():
            what = _passed(partitions.day_bounds(day)[1], records_before, content_before)
            if what is None:
                break
            names = {t: partitions.day_name(t, day) for t, _ in partitions.TABLES}
            tables = await _count_then_keep(conn, have, (week, day), names, what, limits, found)
            if tables:
                await partitions.drop_day(conn, tables, day)


async def _count_then_keep(
    conn: Connection,
    have: partitions.Layout,
    at: tuple[date, date | None],
    names: dict[str, str],
    what: str,
    limits: dict[str, Cutoffs],
    found: dict[str, PurgeCount],
) -> list[str]:
    """The tables whose partition of a week (or leaf of one of its days: `at`) goes,
    dependents first, once the rows it takes are added to `found`: the records, or the
    content of completions whose records stay (as a dry run counts them)."""
    week, day = at

    def holds(table: str) -> bool:
        shape = have[table].get(week, frozenset())
        return week in have[table] and (day is None or (shape is not None and day in shape))

    if what == "records" and holds("completions"):
        rows = await conn.fetch(_PER_PROJECT.format(table=names["completions"]))
    elif what == "content" and holds("completion_content"):
        kept = [(name, cut.records_before) for name, cut in limits.items()]
        rows = await conn.fetch(
            _CONTENT_ONLY.format(table=names["completion_content"]),
            [name for name, _ in kept], [cut for _, cut in kept],
        )  # fmt: skip
    else:
        rows = []
    for project, count in rows:
        done = found.setdefault(project, PurgeCount())
        setattr(done, what, getattr(done, what) + count)
    going = [t for t, _ in partitions.TABLES if holds(t)]
    return [t for t in going if what == "records" or t != "completions"]


async def _vacuum(conn: Connection, touched: list[tuple[str, str]]) -> None:
    """VACUUM the leaves (days, or plain weeks) holding any of the `touched` id ranges."""
    have = await partitions.layout(conn)
    names = {
        name
        for table, _ in partitions.TABLES
        for first, last in touched
        for name in partitions.overlapping(partitions.leaves(have[table], table), first, last)
    }
    if names:
        await conn.execute(f"VACUUM (ANALYZE) {', '.join(sorted(names))}")


async def _count(call: Caller, project: str, cutoffs: Cutoffs) -> PurgeCount:
    async def count(conn: Connection, table: str, before: str) -> int:
        total: int = await conn.fetchval(_COUNT.format(table=table), project, before)
        return total

    async def counts(conn: Connection) -> PurgeCount:
        found = PurgeCount()
        records_before, content_before = cutoffs.records_before, cutoffs.content_before
        if records_before is not None:
            found.records = await count(conn, "completions", records_before)
        if content_before is not None and not (
            records_before is not None and records_before >= content_before
        ):
            found.content = await count(conn, "completion_content", content_before)
            if records_before is not None:
                found.content -= await count(conn, "completion_content", records_before)
        return found

    result: PurgeCount = await call(counts)
    return result


# A batch: removes up to `BATCH` of a project's oldest ids below a cutoff; returns them.
Batch = Callable[[Connection, str, str], Awaitable[list[str]]]


async def _batches(
    call: Caller, batch: Batch, project: str, before: str, touched: list[tuple[str, str]]
) -> int:
    """Run `batch` until it comes back short; add the id ranges it removed rows from."""
    total = 0
    while True:
        ids: list[str] = await call(lambda conn: batch(conn, project, before))
        total += len(ids)
        if ids:
            touched.append((ids[0], ids[-1]))
        if len(ids) < BATCH:
            return total


async def _oldest(conn: Connection, table: str, project: str, before: str) -> list[str]:
    rows = await conn.fetch(_OLDEST.format(table=table), project, before, BATCH)
    return [row[0] for row in rows]


async def _purge_aliases(conn: Connection, *, project: str, before: str) -> None:
    await conn.execute(PURGE_ALIASES_SQL, project, before)


async def _records_batch(conn: Connection, project: str, before: str) -> list[str]:
    """Remove up to `BATCH` of the oldest records below `before`, with their content and
    filter rows; content first, the order in which `update_metadata` locks them."""
    async with conn.transaction():
        ids = await _oldest(conn, "completions", project, before)
        if ids:
            for table, key in reversed(partitions.TABLES[:2]):
                await conn.execute(
                    f"DELETE FROM {table} WHERE project = $1 AND {key} BETWEEN $2 AND $3",
                    project, ids[0], ids[-1],
                )  # fmt: skip
            await conn.execute(
                "DELETE FROM completions WHERE project = $1 AND id BETWEEN $2 AND $3",
                project, ids[0], ids[-1],
            )  # fmt: skip
    return ids


async def _content_batch(conn: Connection, project: str, before: str) -> list[str]:
    """Drop the content and filter rows of up to `BATCH` of the oldest completions below
    `before`, keeping their records."""
    async with conn.transaction():
        ids = await _oldest(conn, "completion_content", project, before)
        if ids:
            span = (project, ids[0], ids[-1])
            await conn.execute(
                "DELETE FROM completion_content WHERE project = $1 AND id BETWEEN $2 AND $3",
                *span,
            )
            await conn.execute(
                "DELETE FROM completion_metadata "
                "WHERE project = $1 AND completion_id BETWEEN $2 AND $3",
                *span,
            )
    return ids
