"""Week partitions of the PostgreSQL store (docs/lifecycle.md, docs/scaling.md).

`completions`, `completion_content` and `completion_metadata` are range-partitioned on the
completion id, one partition per UTC week from Monday: ids begin with their minting time,
so a week is the id range [`completion_id_floor(Monday 00:00)`, the next Monday's). That
key keeps every query what it was: a get or a delete names its id, so its week, and reads
that week's partitions by name; a list walks the weeks in id order, a week at a time
(`postgres_weeks`, which says why reads never name the partitioned tables); and retention
that has passed a whole week for every project drops the week's partitions instead of
deleting rows.

Why weeks, not days: each partition is a table, with its files and catalog rows, that
inserts route through and a list page may visit; with a partition a day, a page planned
across them took 5 ms instead of 0.5 ms (1M completions over 60 days). A year of data is
53 weeks, the 30-day default keeps 5 or 6, and what retention removes inside a week goes
in batches.

Ids that are not of a week from 2020 to 2099 (none of ours, but a table upgraded from an
older release, or one day an import, may hold other shapes) go to two catch-all
partitions, `_before` and `_after`, at either end of the range: every id has a partition
and the partitions still never overlap, so lists keep their ordered walk.

chatkeep makes the partitions itself, no extension needed: this week's and the next's when
a store opens and on every retention run, and on demand when an insert finds no partition for its
row (a clock set back, a server that ran longer than that without a retention run). They
are made as plain tables, then attached, and dropped after a concurrent detach: neither
takes the lock that `CREATE TABLE ... PARTITION OF` or a plain `DROP` takes on the parent,
which would stop every read and write of the table meanwhile.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]

from chatkeep.ids import completion_id_floor
from chatkeep.store.postgres_faults import Connection

# Each partitioned table and its partition key, dependents first (the order they drop in).
TABLES = (
    ("completion_metadata", "completion_id"),
    ("completion_content", "id"),
    ("completions", "id"),
)
WEEK = timedelta(days=7)
DAY = timedelta(days=1)
FIRST_WEEK = date(2019, 12, 30)  # Mondays: the weeks with a partition of their own
END_WEEK = date(2100, 1, 4)
# The catch-all partitions' stand-ins among the weeks: ids below FIRST_WEEK, and from
# END_WEEK on.
BEFORE, AFTER = date.min, date.max
_LOCK = 0x63686B72  # serializes partition changes across servers ("chkr")
_NAMED = {BEFORE: "before", AFTER: "after"}

_CHILDREN = """
SELECT parent.relname, child.relname, i.inhdetachpending
FROM pg_inherits AS i
JOIN pg_class AS parent ON parent.oid = i.inhparent
JOIN pg_class AS child ON child.oid = i.inhrelid
WHERE i.inhparent = ANY(ARRAY['completions'::regclass, 'completion_content'::regclass,
                              'completion_metadata'::regclass])
"""


def _floor(week: date) -> str:
    start = datetime(week.year, week.month, week.day, tzinfo=UTC)
    return completion_id_floor(int(start.timestamp()) * 1000)


# The first id of every week with a partition of its own, and of END_WEEK: what an id is
# looked up in (made once; ids compare as PostgreSQL compares them, byte by byte).
_WEEKS = [FIRST_WEEK + n * WEEK for n in range((END_WEEK - FIRST_WEEK) // WEEK + 1)]
_FLOORS = tuple(_floor(week) for week in _WEEKS)


def week_of_day(day: date) -> date:
    """The Monday starting the week of `day`: the name of its partition."""
    return day - day.weekday() * DAY


def week_of(completion_id: str) -> date:
    """The partition of an id: the Monday of the UTC week it was minted in, or BEFORE or
    AFTER for an id outside the weeks that have their own (any text has one)."""
    n = bisect_right(_FLOORS, completion_id)
    if n == 0:
        return BEFORE
    return AFTER if n == len(_FLOORS) else _WEEKS[n - 1]


def week_bounds(week: date) -> tuple[str | None, str | None]:
    """The id range of a partition: from its first id, to the next one's (None: no bound,
    MINVALUE or MAXVALUE)."""
    if week == BEFORE:
        return None, _FLOORS[0]
    if week == AFTER:
        return _FLOORS[-1], None
    return _floor(week), _floor(week + WEEK)


def partition_name(table: str, week: date) -> str:
    return f"{table}_{_NAMED.get(week) or f'p{week:%Y%m%d}'}"


def _parse_week(table: str, name: str) -> date | None:
    """The week (its Monday, or BEFORE or AFTER) of a partition chatkeep made, None for
    one it did not."""
    for week, word in _NAMED.items():
        if name == f"{table}_{word}":
            return week
    stem = f"{table}_p"
    if not name.startswith(stem):
        return None
    try:
        return datetime.strptime(name[len(stem) :], "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        return None


async def existing(conn: Connection) -> dict[str, set[date]]:
    """The weeks with a partition, per table (detached ones awaiting their end excluded)."""
    found: dict[str, set[date]] = {table: set() for table, _ in TABLES}
    for parent, child, pending in await conn.fetch(_CHILDREN):
        week = _parse_week(parent, child)
        if week is not None and not pending:
            found[parent].add(week)
    return found


def weeks_ahead(today: date | None = None) -> list[date]:
    """This week and the next: made ahead, so that no create waits for a partition."""
    this = week_of_day(today or datetime.now(UTC).date())
    return [this, this + WEEK]


def _bound(value: str | None, missing: str) -> str:
    return missing if value is None else f"'{value}'"


async def ensure(conn: Connection, weeks: Iterable[date]) -> list[date]:
    """Make the partitions of `weeks` (Mondays, or BEFORE or AFTER) that are missing, on
    every table; return the weeks that needed one. Safe with several servers at once (an
    advisory lock)."""
    wanted = sorted({week if week in _NAMED else week_of(_floor(week)) for week in weeks})
    made: list[date] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        have = await existing(conn)
        for week in wanted:
            low, high = week_bounds(week)
            bounds = f"FROM ({_bound(low, 'MINVALUE')}) TO ({_bound(high, 'MAXVALUE')})"
            for table, _ in reversed(TABLES):  # the parent table's first
                if week in have[table]:
                    continue
                name = partition_name(table, week)
                await conn.execute(
                    f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING GENERATED)"
                )
                await conn.execute(
                    f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES {bounds}"
                )
                if not made or made[-1] != week:
                    made.append(week)
    return made


async def ensure_for(conn: Connection, completion_ids: Iterable[str]) -> list[date]:
    """Make the partitions the rows of `completion_ids` need."""
    return await ensure(conn, {week_of(completion_id) for completion_id in completion_ids})


def missing_partition(exc: BaseException) -> bool:
    """Whether an insert failed for want of a partition for its row."""
    return isinstance(exc, asyncpg.CheckViolationError) and "no partition" in str(exc)


def overlapping(weeks: Iterable[date], first: str, last: str) -> list[date]:
    """Those of `weeks` whose partitions hold ids in [first, last]."""
    found = []
    for week in weeks:
        low, high = week_bounds(week)
        if (low is None or low <= last) and (high is None or first < high):
            found.append(week)
    return found


async def finish_detaches(conn: Connection) -> None:
    """End detaches that a stopped server left pending, and drop those partitions."""
    for parent, child, pending in await conn.fetch(_CHILDREN):
        if pending and _parse_week(parent, child) is not None:
            await conn.execute(f"ALTER TABLE {parent} DETACH PARTITION {child} FINALIZE")
            await conn.execute(f"DROP TABLE {child}")


async def drop(conn: Connection, tables: Iterable[str], week: date) -> None:
    """Detach `week`'s partitions of `tables` concurrently (reads and writes go on), then
    drop them: their rows are gone at once, and their space returns to the system."""
    for table in tables:
        name = partition_name(table, week)
        await conn.execute(f"ALTER TABLE {table} DETACH PARTITION {name} CONCURRENTLY")
        await conn.execute(f"DROP TABLE {name}")


async def project_weeks(conn: Connection, table: str) -> set[date]:
    """The weeks in which `table` (an unpartitioned table keyed (project, id)) has rows:
    a skip scan of its primary key, a probe per project and week."""
    weeks: set[date] = set()
    project = await conn.fetchval(f"SELECT min(project) FROM {table}")
    while project is not None:
        found = await conn.fetchval(f"SELECT min(id) FROM {table} WHERE project = $1", project)
        while found is not None:
            week = week_of(found)
            weeks.add(week)
            high = week_bounds(week)[1]
            if high is None:
                break
            found = await conn.fetchval(
                f"SELECT min(id) FROM {table} WHERE project = $1 AND id >= $2", project, high
            )
        project = await conn.fetchval(
            f"SELECT min(project) FROM {table} WHERE project > $1", project
        )
    return weeks
