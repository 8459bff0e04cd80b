"""Usage per minute (`usage_minutes`, migration 0006): the counts that OpenAI's usage and
costs routes read, kept in the database of the completions, on its connections.

Writers add: each server and worker process sums its completions in memory
(`chatkeep.usage.meter`) and adds them here with an upsert that adds to the row's counts, so
any number of them can share one database. The SQL is written once in PostgreSQL's `$n`
form; the SQLite side converts it. Nothing here is a completion's content, and retention of
completions never touches these rows (they have their own, `purge_usage`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from chatkeep.store.base import CompletionStore
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.postgres_faults import Connection
from chatkeep.store.schema import for_sqlite
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3

# What usage can be grouped by, as the column each reads.
UsageGroup = Literal["project", "model", "api_key_id"]
GROUPS: tuple[UsageGroup, ...] = ("project", "model", "api_key_id")
DAY_SECONDS = 86_400
# The key id of a call made without a key (an open server); read back as None.
NO_KEY = ""

ADD_SQL = (
    "INSERT INTO usage_minutes (project, minute, model, api_key_id, requests, input_tokens, "
    "cached_tokens, output_tokens) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
    "ON CONFLICT (project, minute, model, api_key_id) DO UPDATE SET "
    "requests = usage_minutes.requests + excluded.requests, "
    "input_tokens = usage_minutes.input_tokens + excluded.input_tokens, "
    "cached_tokens = usage_minutes.cached_tokens + excluded.cached_tokens, "
    "output_tokens = usage_minutes.output_tokens + excluded.output_tokens"
)
PURGE_SQL = "DELETE FROM usage_minutes WHERE minute < $1"
_SUMS = ", ".join(
    f"CAST(sum({column}) AS BIGINT)"
    for column in ("requests", "input_tokens", "cached_tokens", "output_tokens")
)


@dataclass(frozen=True, slots=True)
class UsageCount:
    """Counts to add to one minute's row (`minute`: Unix seconds, a multiple of 60)."""

    project: str
    minute: int
    model: str
    api_key_id: str
    requests: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Which minutes count: those starting in [start, end) (Unix seconds), of these projects,
    keys and models (None: all)."""

    start: int
    end: int
    projects: tuple[str, ...] | None = None
    api_key_ids: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """The sums of one bucket (its start, a multiple of the width in Unix seconds) and one
    group; a field not grouped by is None, and so is the key id of keyless calls."""

    bucket: int
    project: str | None
    model: str | None
    api_key_id: str | None
    requests: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int


def totals_sql(
    where: UsageFilter, width: int, group_by: Sequence[UsageGroup]
) -> tuple[str, list[Any]]:
    """The aggregate query and its arguments: one row per (bucket, group), in order."""
    args: list[Any] = [width, where.start, where.end]
    conditions = ["minute >= $2", "minute < $3"]
    for column, values in (
        ("project", where.projects),
        ("api_key_id", where.api_key_ids),
        ("model", where.models),
    ):
        if values is None:
            continue
        marks = ", ".join(f"${len(args) + i + 1}" for i in range(len(values)))
        conditions.append(f"{column} IN ({marks})" if values else "FALSE")
        args.extend(values)
    columns = [column for column in GROUPS if column in group_by]
    shown = "".join(f", {column}" for column in columns)
    sql = (
        f"SELECT minute - minute % $1 AS bucket{shown}, {_SUMS} FROM usage_minutes "
        f"WHERE {' AND '.join(conditions)} GROUP BY bucket{shown} ORDER BY bucket{shown}"
    )
    return sql, args


def _total(row: Any, group_by: Sequence[UsageGroup]) -> UsageTotal:
    values = iter(row[1:])
    found = {column: next(values) for column in GROUPS if column in group_by}
    key_id = found.get("api_key_id")
    requests, input_tokens, cached_tokens, output_tokens = (int(v) for v in values)
    return UsageTotal(
        bucket=int(row[0]),
        project=found.get("project"),
        model=found.get("model"),
        api_key_id=None if key_id == NO_KEY else key_id,
        requests=requests,
        input_tokens=input_tokens,
        cached_tokens=cached_tokens,
        output_tokens=output_tokens,
    )


def _rows(counts: Sequence[UsageCount]) -> list[tuple[Any, ...]]:
    # In key order, so that two servers adding to the same rows lock them in the same order
    # (no deadlock between their transactions on PostgreSQL).
    return sorted(
        (c.project, c.minute, c.model, c.api_key_id, c.requests, c.input_tokens,
         c.cached_tokens, c.output_tokens)
        for c in counts
    )  # fmt: skip


class UsageStore(Protocol):
    """Per-minute usage in the completions' database."""

    async def add_usage(self, counts: Sequence[UsageCount]) -> None:
        """Add `counts` to their rows (made when absent), in one transaction."""
        ...

    async def usage_totals(
        self, where: UsageFilter, *, width: int, group_by: Sequence[UsageGroup] = ()
    ) -> list[UsageTotal]:
        """Sums per bucket of `width` seconds (aligned to multiples of it, so UTC days for
        86400) and per group, of the minutes `where` picks; only buckets with usage."""
        ...

    async def purge_usage(self, before: int) -> int:
        """Delete the minutes before `before` (Unix seconds); how many rows went."""
        ...


async def daily_usage_by_model(
    usage: UsageStore, project: str, start: int, end: int
) -> list[UsageTotal]:
    """Requests and tokens per UTC day and model of one project's minutes in [start, end)
    (Unix seconds), oldest day first, then by model: for pages that chart a project's use.
    Each total's `bucket` is the day's start; its `api_key_id` is None (not grouped)."""
    where = UsageFilter(start=start, end=end, projects=(project,))
    return await usage.usage_totals(where, width=DAY_SECONDS, group_by=("project", "model"))


class SQLiteUsageStore:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def add_usage(self, counts: Sequence[UsageCount]) -> None:
        rows = _rows(counts)
        if rows:
            await self._store.run_write(lambda conn: conn.executemany(for_sqlite(ADD_SQL), rows))

    async def usage_totals(
        self, where: UsageFilter, *, width: int, group_by: Sequence[UsageGroup] = ()
    ) -> list[UsageTotal]:
        sql, args = totals_sql(where, width, group_by)

        def read(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(for_sqlite(sql), args).fetchall()

        return [_total(row, group_by) for row in await self._store.run_read(read)]

    async def purge_usage(self, before: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(for_sqlite(PURGE_SQL), (before,)).rowcount

        return await self._store.run_write(op)


class PostgresUsageStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def add_usage(self, counts: Sequence[UsageCount]) -> None:
        rows = _rows(counts)
        if not rows:
            return

        async def add(conn: Connection) -> None:
            async with conn.transaction():
                await conn.executemany(ADD_SQL, rows)

        await self._store.run(add)

    async def usage_totals(
        self, where: UsageFilter, *, width: int, group_by: Sequence[UsageGroup] = ()
    ) -> list[UsageTotal]:
        sql, args = totals_sql(where, width, group_by)
        rows = await self._store.run(lambda conn: conn.fetch(sql, *args), read=True)
        return [_total(row, group_by) for row in rows]

    async def purge_usage(self, before: int) -> int:
        status: str = await self._store.run(lambda conn: conn.execute(PURGE_SQL, before))
        return int(status.rsplit(" ", 1)[-1])


def usage_store_for(store: CompletionStore) -> UsageStore:
    """The usage kept in `store`'s database, on its connections (open with it)."""
    if isinstance(store, SQLiteStore):
        return SQLiteUsageStore(store)
    if isinstance(store, PostgresStore):
        return PostgresUsageStore(store)
    raise TypeError(f"No usage store for a {type(store).__name__}.")
