"""Week and day partitions of the PostgreSQL store (docs/lifecycle.md, docs/scaling.md).

`completions`, `completion_content` and `completion_metadata` are range-partitioned on the
completion id, one partition per UTC week from Monday: ids begin with their minting time,
so a week is the id range [`completion_id_floor(Monday 00:00)`, the next Monday's). Each
week's partition is itself partitioned the same way, one leaf per UTC day (`_d` and the
date), so that retention drops a day's leaves instead of deleting a day's rows. That key
keeps every query what it was: a get or a delete names its id, so its day, and reads
that day's leaves by name; a list walks the weeks in id order, a week at a time, naming
each week's table, which PostgreSQL plans as its seven leaves (`postgres_weeks`, which
says why reads never name the partitioned tables at the top); and retention that has
passed a whole day, or week, for every project drops its leaves.

Why weeks at the top, not days: each partition a statement may touch is a table that the
planner looks at; with a partition a day under the top tables, a page planned across them
took 5 ms instead of 0.5 ms (1M completions over 60 days). A week's seven leaves are what
a list page plans over, and a get plans over one leaf.

Weeks made by chatkeep before day leaves existed are plain tables, and stay so until
retention drops them whole: inside them retention deletes in batches, as it always did.
Reads, inserts and purges take either shape (`Layout`), so no migration rewrites them,
and a server of the previous version still reads and purges a database with day leaves.

Ids that are not of a week from 2020 to 2099 (none of ours, but a table upgraded from an
older release, or one day an import, may hold other shapes) go to two catch-all
partitions, `_before` and `_after`, plain tables at either end of the range: every id has
a partition and the partitions still never overlap, so lists keep their ordered walk.

chatkeep makes the partitions itself, no extension needed: this week's and the next's when
a store opens and on every retention run, and on demand when an insert finds no partition
for its row (a clock set back, a server that ran longer than that without a retention run,
an import into a day retention dropped). A new week is made with its seven leaves before
it is attached; a leaf is made as a plain table, then attached, and dropped after a
concurrent detach: neither takes the lock that `CREATE TABLE ... PARTITION OF` or a plain
`DROP` takes on the parent, which would stop every read and write of it meanwhile
(PostgreSQL 15 detaches a leaf of a week concurrently as it does a week of the top table).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]

from chatkeep.ids import completion_id_floor, completion_id_ms
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
_EPOCH = date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000

# A week's shape: the days that have a leaf (a week of day leaves), or None for a week
# that is one plain table (made before day leaves, or a catch-all).
Shape = frozenset[date] | None
# Per table, its weeks (Mondays, or BEFORE or AFTER) and each one's shape.
Layout = dict[str, dict[date, Shape]]

# The rows of `pg_inherits` under the three tables: their partitions, and the leaves of
# those. (The names go as text: a `regclass[]` parameter would cost each new connection a
# type lookup, 10-25 ms under load.)
_UNDER_ROOTS = """
WHERE i.inhparent = ANY($1::text[]::regclass[])
   OR i.inhparent IN (
       SELECT inhrelid FROM pg_inherits WHERE inhparent = ANY($1::text[]::regclass[]))
"""
# Those partitions and leaves: (parent, child, whether the child is partitioned itself,
# whether a detach of it is pending).
_CHILDREN = f"""
SELECT parent.relname, child.relname, child.relkind = 'p', i.inhdetachpending
FROM pg_inherits AS i
JOIN pg_class AS parent ON parent.oid = i.inhparent
JOIN pg_class AS child ON child.oid = i.inhrelid
{_UNDER_ROOTS}"""
# What `_CHILDREN` reads, in one short value: it changes whenever a partition or a leaf is
# made, attached, detached (or its detach begins) or dropped, since each of those adds,
# removes or changes a row of `pg_inherits` (a table made again has a new oid). A server
# checks it once a second and reads the layout again only when it changed
# (`postgres_weeks.ServedWeeks`).
_SIGNATURE = f"""
SELECT md5(string_agg(i.inhrelid::text || ':' || i.inhdetachpending::text, ','
                      ORDER BY i.inhrelid))
FROM pg_inherits AS i
{_UNDER_ROOTS}"""
_ROOTS = tuple(table for table, _ in TABLES)


def day_floor(day: date) -> str:
    """The first id minted on `day` (UTC); of a Monday, the first of its week."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return completion_id_floor(int(start.timestamp()) * 1000)


# The first id of every week with a partition of its own, and of END_WEEK: what an id is
# looked up in (made once; ids compare as PostgreSQL compares them, byte by byte).
_WEEKS = tuple(FIRST_WEEK + n * WEEK for n in range((END_WEEK - FIRST_WEEK) // WEEK + 1))
_FLOORS = tuple(day_floor(week) for week in _WEEKS)


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


def day_of(completion_id: str) -> date | None:
    """The UTC day an id was minted on, its leaf in a week of day leaves; None for an id
    of a catch-all partition."""
    week = week_of(completion_id)
    if week in _NAMED:
        return None
    try:  # one of ours: its time, in a few microseconds
        return date.fromordinal(_EPOCH + completion_id_ms(completion_id) // _DAY_MS)
    except ValueError:  # other text between two of our ids: compared with the day floors
        days = days_of(week)
        return days[bisect_right([day_floor(day) for day in days], completion_id) - 1]


def days_of(week: date) -> list[date]:
    """The seven days of a week (a Monday)."""
    return [week + n * DAY for n in range(7)]


def week_bounds(week: date) -> tuple[str | None, str | None]:
    """The id range of a partition: from its first id, to the next one's (None: no bound,
    MINVALUE or MAXVALUE)."""
    if week == BEFORE:
        return None, _FLOORS[0]
    if week == AFTER:
        return _FLOORS[-1], None
    return day_floor(week), day_floor(week + WEEK)


def day_bounds(day: date) -> tuple[str, str]:
    """The id range of a day's leaf."""
    return day_floor(day), day_floor(day + DAY)


def partition_name(table: str, week: date) -> str:
    """The name of a week's partition of `table`, whatever its shape."""
    return f"{table}_{_NAMED.get(week) or f'p{week:%Y%m%d}'}"


def day_name(table: str, day: date) -> str:
    """The name of a day's leaf of `table`, inside its week's partition."""
    return f"{table}_d{day:%Y%m%d}"


def _parse(stem: str, name: str) -> date | None:
    """The date a name made of `stem` and YYYYMMDD ends with (read once a second for every
    partition and leaf, so without `strptime`, which took most of the catalog read)."""
    digits = name[len(stem) :]
    if not name.startswith(stem) or len(digits) != 8 or not digits.isascii():
        return None
    if not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def _parse_week(table: str, name: str) -> date | None:
    """The week (its Monday, or BEFORE or AFTER) of a partition chatkeep made, None for
    one it did not."""
    for week, word in _NAMED.items():
        if name == f"{table}_{word}":
            return week
    return _parse(f"{table}_p", name)


async def layout(conn: Connection, *, pending: bool = False) -> Layout:
    """Every table's weeks and their shapes, from the catalog (detached partitions
    awaiting their end excluded; with `pending`, only those, as weeks or days)."""
    found: Layout = {table: {} for table in _ROOTS}
    days: dict[str, tuple[str, date, set[date]]] = {}  # a week's table: its days
    rows = await conn.fetch(_CHILDREN, list(_ROOTS))
    for parent, child, split, detaching in rows:
        week = _parse_week(parent, child) if parent in found else None
        if week is not None and detaching == pending:
            found[parent][week] = None
        if week is not None and split and week not in _NAMED:
            days[child] = (parent, week, set())
    for parent, child, _, detaching in rows:
        if parent in days and detaching == pending:
            table, week, held = days[parent]
            day = _parse(f"{table}_d", child)
            if day is not None and week_of_day(day) == week:
                held.add(day)
    for table, week, held in days.values():
        # Pending: only leaves detaching from a week that stays (a detaching week is None).
        if (week in found[table]) if not pending else (held and week not in found[table]):
            found[table][week] = frozenset(held)
    return found


async def signature(conn: Connection) -> str | None:
    """A digest of the partitions `layout` reads: equal while none was made, attached,
    detached or dropped (None while there are none)."""
    found: str | None = await conn.fetchval(_SIGNATURE, list(_ROOTS))
    return found


async def existing(conn: Connection) -> dict[str, set[date]]:
    """The weeks with a partition, per table, whatever their shape."""
    return {table: set(weeks) for table, weeks in (await layout(conn)).items()}


def weeks_ahead(today: date | None = None) -> list[date]:
    """This week and the next: made ahead, so that no create waits for a partition."""
    this = week_of_day(today or datetime.now(UTC).date())
    return [this, this + WEEK]


def _bound(value: str | None, missing: str) -> str:
    return missing if value is None else f"'{value}'"


def _range(low: str | None, high: str | None) -> str:
    return f"FROM ({_bound(low, 'MINVALUE')}) TO ({_bound(high, 'MAXVALUE')})"


async def _attach_day(conn: Connection, table: str, day: date) -> None:
    week, name = partition_name(table, week_of_day(day)), day_name(table, day)
    await conn.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING GENERATED)")
    await conn.execute(
        f"ALTER TABLE {week} ATTACH PARTITION {name} FOR VALUES {_range(*day_bounds(day))}"
    )


async def _make_week(conn: Connection, table: str, key: str, week: date) -> None:
    """A week's partition of `table`: a plain table for a catch-all, else a table of seven
    day leaves (made before it is attached, so no one waits on them)."""
    name = partition_name(table, week)
    like = f"(LIKE {table} INCLUDING DEFAULTS INCLUDING GENERATED)"
    if week in _NAMED:
        await conn.execute(f"CREATE TABLE {name} {like}")
    else:
        await conn.execute(f"CREATE TABLE {name} {like} PARTITION BY RANGE ({key})")
        for day in days_of(week):
            await _attach_day(conn, table, day)
    await conn.execute(
        f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES {_range(*week_bounds(week))}"
    )


async def ensure(conn: Connection, weeks: Iterable[date], days: Iterable[date] = ()) -> list[date]:
    """Make the partitions of `weeks` (Mondays, or BEFORE or AFTER) that are missing on
    any table, and the leaves of `days` missing in weeks of day leaves; return the weeks
    that needed either. A week's partition that exists keeps its shape and its days (a
    day retention dropped is made again only by `days`, that is for a row of it). Safe
    with several servers at once (an advisory lock)."""
    wanted = {week if week in _NAMED else week_of(day_floor(week)) for week in weeks}
    wanted_days = sorted(set(days))
    wanted |= {week_of_day(day) for day in wanted_days}
    made: set[date] = set()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        have = await layout(conn)
        for table, key in reversed(TABLES):  # the parent table's first
            for week in sorted(wanted):
                if week not in have[table]:
                    await _make_week(conn, table, key, week)
                    made.add(week)
            for day in wanted_days:
                held = have[table].get(week_of_day(day))
                if held is not None and day not in held:
                    await _attach_day(conn, table, day)
                    made.add(week_of_day(day))
    return sorted(made)


async def ensure_for(conn: Connection, completion_ids: Iterable[str]) -> list[date]:
    """Make the partitions and leaves the rows of `completion_ids` need."""
    ids = list(completion_ids)
    days = {day for day in map(day_of, ids) if day is not None}
    return await ensure(conn, {week_of(completion_id) for completion_id in ids}, days)


def missing_partition(exc: BaseException) -> bool:
    """Whether an insert failed for want of a partition for its row."""
    return isinstance(exc, asyncpg.CheckViolationError) and "no partition" in str(exc)


def leaves(weeks: Mapping[date, Shape], table: str) -> list[tuple[str, str | None, str | None]]:
    """The tables holding `table`'s rows, in id order: each week's leaves, or the week
    itself when it is plain; each with its id range."""
    found: list[tuple[str, str | None, str | None]] = []
    for week in sorted(weeks):
        held = weeks[week]
        if held is None:
            found.append((partition_name(table, week), *week_bounds(week)))
        else:
            found += [(day_name(table, day), *day_bounds(day)) for day in sorted(held)]
    return found


def overlapping(
    tables: Iterable[tuple[str, str | None, str | None]], first: str, last: str
) -> list[str]:
    """Those of `tables` (from `leaves`) that hold ids in [first, last]."""
    return [
        name
        for name, low, high in tables
        if (low is None or low <= last) and (high is None or first < high)
    ]


async def finish_detaches(conn: Connection) -> None:
    """End detaches that a stopped server left pending, and drop those partitions."""
    for table, weeks in (await layout(conn, pending=True)).items():
        for week, held in weeks.items():
            parent = partition_name(table, week)
            for day in sorted(held or ()):
                await conn.execute(
                    f"ALTER TABLE {parent} DETACH PARTITION {day_name(table, day)} FINALIZE"
                )
                await conn.execute(f"DROP TABLE {day_name(table, day)}")
            if held is None:
                await conn.execute(f"ALTER TABLE {table} DETACH PARTITION {parent} FINALIZE")
                await conn.execute(f"DROP TABLE {parent}")


async def drop(conn: Connection, tables: Iterable[str], week: date) -> None:
    """Detach `week`'s partitions of `tables` concurrently (reads and writes go on), then
    drop them with their leaves: their rows are gone at once, and their space returns to
    the system."""
    for table in tables:
        name = partition_name(table, week)
        await conn.execute(f"ALTER TABLE {table} DETACH PARTITION {name} CONCURRENTLY")
        await conn.execute(f"DROP TABLE {name}")


async def drop_day(conn: Connection, tables: Iterable[str], day: date) -> None:
    """Detach `day`'s leaves of `tables` from their week concurrently, then drop them."""
    for table in tables:
        week, name = partition_name(table, week_of_day(day)), day_name(table, day)
        await conn.execute(f"ALTER TABLE {week} DETACH PARTITION {name} CONCURRENTLY")
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
