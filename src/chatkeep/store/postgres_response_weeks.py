"""Week partitions of the PostgreSQL `responses` table, as the completion tables have them
(`postgres_partitions`, which says why weeks): range partitions on the response id, one per
UTC week from Monday, since a response id begins with its minting time in hex.

A week's partition is made when a store opens a purge (this week's and the next), and on
demand when an insert finds none for its row; made as a plain table and then attached, and
dropped after a concurrent detach, so neither stops the table's reads and writes. Retention
drops a week whole once every project's record window has passed it, counting its rows
first; what is left goes in batches (`store/responses.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

from chatkeep.response_ids import RESPONSE_PREFIX, response_id_floor
from chatkeep.store.base import PurgeCount
from chatkeep.store.postgres_faults import Connection
from chatkeep.store.postgres_partitions import WEEK, week_of_day, weeks_ahead

TABLE = "responses"
_LOCK = 0x63686B73  # serializes partition changes of `responses` across servers ("chks")
_TIME_DIGITS = 12

_CHILDREN = """
SELECT child.relname, i.inhdetachpending
FROM pg_inherits AS i
JOIN pg_class AS child ON child.oid = i.inhrelid
WHERE i.inhparent = 'responses'::regclass
"""
_PER_PROJECT = "SELECT project, count(*) FROM {name} GROUP BY project"


def floor(week: date) -> str:
    """The first response id of a week (a Monday)."""
    start = datetime(week.year, week.month, week.day, tzinfo=UTC)
    return response_id_floor(int(start.timestamp()) * 1000)


def week_of(response_id: str) -> date:
    """The Monday of the UTC week a response id was minted in."""
    digits = response_id[len(RESPONSE_PREFIX) : len(RESPONSE_PREFIX) + _TIME_DIGITS]
    minted = datetime.fromtimestamp(int(digits, 16) / 1000, tz=UTC)
    return week_of_day(minted.date())


def partition_name(week: date) -> str:
    return f"{TABLE}_p{week:%Y%m%d}"


def _parse(name: str) -> date | None:
    stem = f"{TABLE}_p"
    if not name.startswith(stem):
        return None
    try:
        return datetime.strptime(name[len(stem) :], "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        return None


async def existing(conn: Connection) -> set[date]:
    """The weeks with a partition (detached ones awaiting their end excluded)."""
    found = set()
    for child, pending in await conn.fetch(_CHILDREN):
        week = _parse(child)
        if week is not None and not pending:
            found.add(week)
    return found


async def ensure(conn: Connection, weeks: Iterable[date]) -> list[date]:
    """Make the partitions of `weeks` (Mondays) that are missing; the weeks made. Safe with
    several servers at once (an advisory lock)."""
    made: list[date] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        have = await existing(conn)
        for week in sorted(set(weeks) - have):
            name = partition_name(week)
            await conn.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS)")
            await conn.execute(
                f"ALTER TABLE {TABLE} ATTACH PARTITION {name} "
                f"FOR VALUES FROM ('{floor(week)}') TO ('{floor(week + WEEK)}')"
            )
            made.append(week)
    return made


async def prepare(conn: Connection) -> None:
    """Before a purge: end detaches a stopped server left pending, and make the partitions
    of this week and the next, so that no create waits for one."""
    for child, pending in await conn.fetch(_CHILDREN):
        if pending and _parse(child) is not None:
            await conn.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {child} FINALIZE")
            await conn.execute(f"DROP TABLE {child}")
    await ensure(conn, weeks_ahead())


async def drop_passed(
    conn: Connection, records_before: str, found: dict[str, PurgeCount]
) -> list[date]:
    """Drop every week whose ids are all below `records_before` (every project's record
    window has passed it), adding its rows to `found` per project first."""
    dropped = []
    for week in sorted(await existing(conn)):
        if floor(week + WEEK) > records_before:
            continue
        name = partition_name(week)
        for project, records in await conn.fetch(_PER_PROJECT.format(name=name)):
            found.setdefault(project, PurgeCount()).records += records
        await conn.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name} CONCURRENTLY")
        await conn.execute(f"DROP TABLE {name}")
        dropped.append(week)
    return dropped


async def vacuum_below(conn: Connection, cutoff: str) -> None:
    """VACUUM the partitions holding ids below `cutoff`, where batches removed rows, so
    their space is reused and no removed text lingers in dead rows (docs/lifecycle.md)."""
    names = [partition_name(w) for w in sorted(await existing(conn)) if floor(w) < cutoff]
    if names:
        await conn.execute(f"VACUUM (ANALYZE) {', '.join(names)}")
