"""Reads routed to week partitions and day leaves: each statement names what it reads.

PostgreSQL plans a statement on a partitioned table by looking at every partition it
cannot rule out while planning, and a list page rules out none (its bounds are a cursor
and a subquery, known only when it runs). Measured at 1M completions over 60 days (10
week partitions, warm, planning plus execution): a list page 1.1 ms against 0.26 ms on
the same rows unpartitioned, a 2-key filtered page 1.9 ms against 0.6 ms; and through the
server at 500 requests/s the filtered page's p99 was 1.1 s, the planning alone saturating
two cores. A generic plan was no way out: it sorted every match instead of walking the
index in order (383 ms).

So no read names the tables at the top. A completion id begins with its minting time, so
its day and week, and the names of their tables (`postgres_partitions`), follow from the
id alone: a get, an update or a delete reads one day's leaves (or one week's partitions,
in a week made before day leaves), planned as a small plain table. A list page walks the
weeks that hold content from the cursor's, newest or oldest first, and asks each for what
is still missing of the page: the cursor's week a day at a time, where the page nearly
always ends (each statement plans one day's leaves), and the weeks after it by their week
table, planned over its seven leaves and pruned as it runs, so a stretch without a match
costs a statement a week, not seven. Measured on 60,000 completions over 60 days (custom
plans, EXPLAIN, a loaded machine): a 2-key page planned in 0.19 ms on a day's leaves and
0.84 ms on a week's table, its reach probe 0.12 and 0.49 ms; the page statements of a week
table are prepared once and run as generic plans, which keep the ordered, pruned walk
(tests/store/test_week_reads.py), except the reach probe (`_reach`). At 4.4M completions,
in process, the same 800 random cursors: a 2-key filtered page p50/p99 1.4/2.5 ms walking
the cursor's week by day, 1.9/80 ms walking it by its week table, where the reach probe's
generic plan was slow for some values (25-145 ms); with that probe planned for
its values, a filter matching a handful of rows in all took 9-11/21-32 ms this way, and
18/47-70 ms walking every week by day (bench/README.md).

Whether a week or day was made or dropped since is checked at most once a `max_age` (one
second), by the digest of the catalog rows that say which exist
(`partitions.signature`), and they are read again only when it changed, when the store
makes or drops partitions itself, or when an id falls in a week or day not seen yet that
exists. Reading them every second took 5-10 ms under load with 60 days of leaves, 4 ms
of it Python on the event loop, which stalled every request in flight (in process at 1M,
500 lists a second: the loop's stalls lined up with those reads, and the p99 went from
1.81 to 1.30 ms without them). A partition another server made less than a second ago
can be missed by a list meanwhile (only one for ids outside this week and the next,
which are made ahead; a get finds it at once); one another server dropped is found
missing when a statement names it, and that week or day is then read as empty.
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


_ORDER = ("completions", "completion_content", "completion_metadata")  # as in `Tables`
_UNREAD = "unread"  # the signature before the first read: no digest looks like it


@dataclasses.dataclass(frozen=True, slots=True)
class Span:
    """A stretch of ids a page walks, and the tables holding it: a week, with its days
    when its three tables have day leaves."""

    low: str | None
    high: str | None
    tables: Tables
    days: tuple[Span, ...] = ()


def day_tables(day: date) -> Tables:
    """The leaves of one day, in a week of day leaves."""
    return Tables(*(partitions.day_name(table, day) for table in _ORDER))


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
    be served, and the shape of every table's weeks (`partitions.Layout`), as last read
    from the catalog. One per store: never shared between databases."""

    def __init__(self, *, max_age: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self._max_age = max_age
        self._clock = clock
        self._layout: partitions.Layout = {table: {} for table, _ in partitions.TABLES}
        self._ordered: tuple[Span, ...] = ()
        self._read_at = float("-inf")
        self._signature: str | None = _UNREAD
        self._started = self._applied = 0  # reads begun, and the newest one applied

    def forget(self) -> None:
        """Read the catalog on the next call: partitions were made or dropped."""
        self._read_at = float("-inf")
        self._signature = _UNREAD

    async def _read(self, conn: Connection) -> None:
        """Read the layout again, whatever the signature says."""
        self._signature = _UNREAD
        await self._refresh(conn)

    async def _refresh(self, conn: Connection) -> None:
        """Check the catalog's signature, and read the layout only when it changed. Calls
        meanwhile serve the layout as it was: one check at a time, not one per call; and a
        read that ends after a newer one does not put back what it saw."""
        self._read_at = self._clock()
        self._started += 1
        mine = self._started
        try:
            signature = await partitions.signature(conn)
            if signature == self._signature:
                return
            layout = await partitions.layout(conn)
        except BaseException:
            self._read_at = float("-inf")
            raise
        if mine > self._applied:
            self._layout, self._ordered = layout, spans(layout)
            self._signature, self._applied = signature, mine

    async def ordered(self, conn: Connection) -> tuple[Span, ...]:
        """Every served week, oldest first."""
        if self._clock() - self._read_at > self._max_age:
            await self._refresh(conn)
        return self._ordered

    async def tables_for(self, conn: Connection, completion_id: str) -> Tables | None:
        """The tables holding `completion_id`: its day's leaves, or its week's partitions
        where they are plain; None when its week or day has no content table. A week not
        seen yet is looked up by name (a made-up id costs one trivial statement, and never
        a catalog read); when it exists, the catalog is read again."""
        week = partitions.week_of(completion_id)
        if week not in self._layout["completion_content"]:
            name = partitions.partition_name("completion_content", week)
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
                return None
            await self._read(conn)
        day = partitions.day_of(completion_id)
        held = self._layout["completion_content"][week]
        if held is not None and day is not None and day not in held:
            # Dropped by retention, or made since for an import: looked up by name too.
            name = partitions.day_name("completion_content", day)
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
                return None
            await self._read(conn)
        names = []
        for table in ("completions", "completion_content", "completion_metadata"):
            held = self._layout[table].get(week)
            if held is None or day is None:
                names.append(partitions.partition_name(table, week))
            elif day in held:
                names.append(partitions.day_name(table, day))
            else:  # retention dropped that day (a record outlives its content, never less)
                return None
        return Tables(*names)


def spans(layout: partitions.Layout) -> tuple[Span, ...]:
    """What a page may walk, oldest first: each week with content, as its tables, with
    its days' leaves where all three tables have them."""
    found: list[Span] = []
    for week in sorted(layout["completion_content"]):
        shapes = [layout[table].get(week) for table in _ORDER]
        days: tuple[Span, ...] = ()
        if all(shape is not None for shape in shapes):
            # The days with all three leaves: a day missing one (its records dropped and
            # its content made again by a later insert, say) serves nothing.
            held = frozenset.intersection(*(shape or frozenset() for shape in shapes))
            days = tuple(Span(*partitions.day_bounds(d), day_tables(d)) for d in sorted(held))
        found.append(Span(*partitions.week_bounds(week), tables_of(week), days))
    return tuple(found)


def walked(ordered: Sequence[Span], query: ListQuery) -> list[Span]:
    """The spans a page visits, in its order: from the cursor's week (all with none), and
    only those its creation-time range reaches; the first week a day at a time where it
    has day leaves (where a page nearly always ends: each statement then plans one
    plain table), the others a week at a time (a stretch without a match then costs one
    statement a week, not seven)."""
    low, high = id_bounds(query)
    if query.after is not None:
        if query.order == "asc":
            low = query.after if low is None else max(low, query.after)
        else:
            high = query.after if high is None else min(high, query.after)

    def reached(spans: Sequence[Span]) -> list[Span]:
        inside = [
            span
            for span in spans
            if (low is None or span.high is None or low < span.high)
            and (high is None or span.low is None or span.low <= high)
        ]
        return inside if query.order == "asc" else inside[::-1]

    weeks = reached(ordered)
    if weeks and weeks[0].days:
        return [*reached(weeks[0].days), *weeks[1:]]
    return weeks


async def _reach(conn: Connection, span: Span, sql: str, params: list[Any]) -> Any:
    """The row of a `reach_sql` probe. On a week's table of day leaves it is planned for
    its values: from its sixth run PostgreSQL may reuse a generic plan, which on a week's
    table was slow for some values (25-145 ms a probe at 4.4M completions, where its
    custom plan takes under 2 ms to plan and 0.2 ms to run; which plan it was is not
    known, only that no probe was slow in its first five runs)."""
    if not span.days:
        return await conn.fetchrow(sql, *params)
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        return await conn.fetchrow(sql, *params)


async def list_page(
    conn: Connection, ordered: Sequence[Span], project: str, query: ListQuery
) -> list[Any]:
    """Up to `query.limit + 1` rows (completion, metadata) of a page, span after span."""
    wanted = query.limit + 1
    rows: list[Any] = []
    for span in walked(ordered, query):
        t = span.tables
        part = dataclasses.replace(query, limit=wanted - len(rows) - 1)
        if len(query.metadata) > 1:  # drive from the sparsest pair (see `list_sql`)
            sql, params = reach_sql(project, part, t)
            part = sparsest_first(part, tuple(await _reach(conn, span, sql, params)))
        sql, params = list_sql(project, part, "postgres", t)
        rows += await conn.fetch(sql, *params)
        if len(rows) >= wanted:
            break
    return rows
