"""Retention on the PostgreSQL store: bounded batches, each its own short transaction,
then a VACUUM of what they touched, so the space is reused instead of the tables growing.

Each batch takes the oldest ids below a cutoff and deletes their id range: a purge of any
size holds locks on one batch's rows at a time, and never on a row a create writes. A
plain VACUUM does not rewrite the tables or block reads and writes (docs/lifecycle.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chatkeep.store.base import Cutoffs, PurgeCount
from chatkeep.store.postgres_faults import Connection
from chatkeep.store.sqlite_purge import PROJECTS_SQL

# The store's `_call`: runs a function on a pooled connection, 503 when unreachable.
Caller = Callable[[Callable[[Connection], Awaitable[Any]]], Awaitable[Any]]
BATCH = 5000  # rows per transaction

_OLDEST = "SELECT id FROM {table} WHERE project = $1 AND id < $2 ORDER BY id LIMIT $3"
_COUNT = "SELECT count(*) FROM {table} WHERE project = $1 AND id < $2"
_VACUUM = "VACUUM (ANALYZE) completions, completion_content, completion_metadata"


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
    found: dict[str, PurgeCount] = {}
    for name in names:
        limits = cutoffs(name)
        if dry_run:
            found[name] = await _count(call, name, limits)
            continue
        done = found[name] = PurgeCount()
        if limits.records_before is not None:
            done.records = await _batches(call, _records_batch, name, limits.records_before)
        if limits.content_before is not None:
            done.content = await _batches(call, _content_batch, name, limits.content_before)
    if not dry_run and any(count.records or count.content for count in found.values()):
        await call(lambda conn: conn.execute(_VACUUM))
    return found


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


Batch = Callable[[Connection, str, str], Awaitable[int]]


async def _batches(call: Caller, batch: Batch, project: str, before: str) -> int:
    total = 0
    while True:
        done: int = await call(lambda conn: batch(conn, project, before))
        total += done
        if done < BATCH:
            return total


async def _oldest(conn: Connection, table: str, project: str, before: str) -> list[str]:
    rows = await conn.fetch(_OLDEST.format(table=table), project, before, BATCH)
    return [row[0] for row in rows]


async def _records_batch(conn: Connection, project: str, before: str) -> int:
    """Remove up to `BATCH` of the oldest records below `before`, with their content and
    filter rows (ON DELETE CASCADE)."""
    async with conn.transaction():
        ids = await _oldest(conn, "completions", project, before)
        if ids:
            await conn.execute(
                "DELETE FROM completions WHERE project = $1 AND id BETWEEN $2 AND $3",
                project, ids[0], ids[-1],
            )  # fmt: skip
    return len(ids)


async def _content_batch(conn: Connection, project: str, before: str) -> int:
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
    return len(ids)
