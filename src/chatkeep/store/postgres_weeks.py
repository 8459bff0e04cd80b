"""Reads routed to week partitions: each statement names the one week it reads.

PostgreSQL plans a statement on a partitioned table by looking at every partition it
cannot rule out while planning, and a list page rules out none (its bounds are a cursor
and a subquery, known only when it runs). Measured at 1M completions over 60 days (10
week partitions, warm, planning plus execution): a list page 1.1 ms against 0.26 ms on
the same rows unpartitioned, a 2-key filtered page 1.9 ms against 0.6 ms; and through the
server at 500 requests/s the filtered page's p99 was 1.1 s, the planning alone saturating
two cores. A generic plan was no way out: it sorted every match instead of walking the
index in order (383 ms).

So no read names the partitioned tables. A completion id begins with its minting time, so
its week, and the names of that week's partitions (`postgres_partitions`), follow from the
id alone: a get, an update or a delete reads one week's tables, planned as a small plain
table. A list page walks the weeks that hold content from the cursor's, newest or oldest
first, and asks each for what is still missing of the page; a page ends in its first week
or two, and a week without a match costs one or two short index probes.

Which weeks exist is read from the catalog at most once a `max_age` (one second), and
again when the store makes or drops partitions itself or an id falls in a week not seen
yet that exists. A partition another server made less than a second ago can be missed by
a list meanwhile (only one for ids outside this week and the next, which are made ahead;
a get finds it at once); one another server dropped is found missing when a statement
names it, and that week is then read as empty.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from chatkeep.protocol.queries import ListQuery
from chatkeep.store import postgres_partitions as partitions
from chatkeep.store.postgres_faults import Connection
from chatkeep.store.queries import Tables, id_bounds, list_sql, reach_sql, sparsest_first

# A week's partitions were dropped (or never made) since the statement was written.
MISSING = asyncpg.UndefinedTableError


def tables_of(week: date) -> Tables:
    """The partitions of one week (a Monday, or BEFORE or AFTER)."""
    return Tables(
        *(
            partitions.partition_name(table, week)
            for table in ("completions", "completion_content", "completion_metadata")
        )
    )


class ServedWeeks:
    """The weeks that have a content partition, that is every week whose completions can
    be served, as last read from the catalog. One per store: never shared between
    databases."""

    def __init__(self, *, max_age: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self._max_age = max_age
        self._clock = clock
        self._weeks: frozenset[date] = frozenset()
        self._ordered: tuple[date, ...] = ()
        self._read_at = float("-inf")

    def forget(self) -> None:
        """Read the catalog on the next call: partitions were made or dropped."""
        self._read_at = float("-inf")

    async def _read(self, conn: Connection) -> None:
        found = (await partitions.existing(conn))["completion_content"]
        self._weeks, self._ordered = frozenset(found), tuple(sorted(found))
        self._read_at = self._clock()

    async def ordered(self, conn: Connection) -> tuple[date, ...]:
        """Every served week, oldest first."""
        if self._clock() - self._read_at > self._max_age:
            await self._read(conn)
        return self._ordered

    async def tables_for(self, conn: Connection, completion_id: str) -> Tables | None:
        """The partitions holding `completion_id`, None when its week has none. A week not
        seen yet is looked up by name (a made-up id costs one trivial statement, and never
        a catalog read); when it exists, the served weeks are read again on the next list."""
        week = partitions.week_of(completion_id)
        t = tables_of(week)
        if week not in self._weeks:
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", t.content):
                return None
            self.forget()
        return t


def walked(weeks: Sequence[date], query: ListQuery) -> list[date]:
    """The weeks a page visits, in its order: from the cursor's week (all with none), and
    only those its creation-time range reaches."""
    low, high = id_bounds(query)
    first = partitions.week_of(low) if low is not None else date.min
    last = partitions.week_of(high) if high is not None else date.max
    if query.after is not None:
        if query.order == "asc":
            first = max(first, partitions.week_of(query.after))
        else:
            last = min(last, partitions.week_of(query.after))
    inside = [week for week in weeks if first <= week <= last]
    return inside if query.order == "asc" else inside[::-1]


async def list_page(
    conn: Connection, weeks: Sequence[date], project: str, query: ListQuery
) -> list[Any]:
    """Up to `query.limit + 1` rows (completion, metadata) of a page, week after week."""
    wanted = query.limit + 1
    rows: list[Any] = []
    for week in walked(weeks, query):
        t = tables_of(week)
        part = dataclasses.replace(query, limit=wanted - len(rows) - 1)
        if len(query.metadata) > 1:  # drive from the sparsest pair (see `list_sql`)
            sql, params = reach_sql(project, part, t)
            part = sparsest_first(part, tuple(await conn.fetchrow(sql, *params)))
        sql, params = list_sql(project, part, "postgres", t)
        rows += await conn.fetch(sql, *params)
        if len(rows) >= wanted:
            break
    return rows
