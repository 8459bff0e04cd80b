"""PostgreSQL's day leaves: a week made by this version is a table of seven day leaves;
retention drops a day's leaves (records and content, or content and filter rows only)
instead of deleting its rows; weeks a previous version made (plain tables) keep working
beside them, and purge row by row until they go whole."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import pytest

from chatkeep.ids import completion_id_floor
from chatkeep.protocol.queries import ListQuery
from chatkeep.store import postgres_partitions as partitions
from chatkeep.store import postgres_purge
from chatkeep.store.base import Cutoffs, NewCompletion, PurgeCount
from chatkeep.store.postgres import PostgresStore
from tests.store.test_partitions import at, ms_of, served
from tests.store.test_store_contract import insert_all

pytestmark = pytest.mark.anyio
MONDAY = date(2026, 9, 7)


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_purge, "BATCH", 3)


@pytest.fixture
def store(postgres_store: PostgresStore) -> PostgresStore:
    return postgres_store  # every test here is PostgreSQL's alone


async def layout(url: str) -> partitions.Layout:
    conn = await asyncpg.connect(url)
    try:
        return await partitions.layout(conn)
    finally:
        await conn.close()


async def scalar(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def before(day: date) -> str:
    return completion_id_floor(ms_of(day))


def days(first: date, count: int) -> frozenset[date]:
    return frozenset(first + timedelta(days=n) for n in range(count))


async def previous_version_week(url: str, week: date) -> None:
    """A week's partitions as chatkeep made them before day leaves (one plain table per
    table, made then attached), in place of this version's: what an upgraded database
    holds."""
    conn = await asyncpg.connect(url)
    try:
        low, high = partitions.week_bounds(week)
        for table, _ in partitions.TABLES:  # dependents first
            name = partitions.partition_name(table, week)
            if await conn.fetchval("SELECT to_regclass($1)", name) is not None:
                await conn.execute(f"DROP TABLE {name}")
        for table, _ in reversed(partitions.TABLES):
            name = partitions.partition_name(table, week)
            await conn.execute(
                f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING GENERATED)"
            )
            await conn.execute(
                f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{low}') TO "
                f"('{high}')"
            )
    finally:
        await conn.close()


def spread(week: date, project: str = "proj", per_day: int = 2) -> list[NewCompletion]:
    """`per_day` completions (with a pair each) on every day of `week`, in id order."""
    return [
        at(day, n, project=project, metadata={"team": "a"})
        for day in partitions.days_of(week)
        for n in range(per_day)
    ]


async def test_a_new_week_has_a_leaf_per_day_with_every_index(
    store: PostgresStore, postgres_url: str
) -> None:
    this, following = partitions.weeks_ahead()
    have = await layout(postgres_url)
    for table, _ in partitions.TABLES:
        assert have[table] == {this: days(this, 7), following: days(following, 7)}
    await insert_all(store, spread(MONDAY))
    assert (await layout(postgres_url))["completions"][MONDAY] == days(MONDAY, 7)
    # Each leaf has the partitioned tables' indexes: the keys, the model and filter walks,
    # and search's GIN index.
    indexes = await scalar(
        postgres_url,
        "SELECT string_agg(indexdef, ' | ' ORDER BY indexname) FROM pg_indexes "
        f"WHERE tablename LIKE '%_d{MONDAY + timedelta(days=3):%Y%m%d}'",
    )
    for index in ("(project, id)", "(project, model, id)", "gin (search)"):
        assert index in str(indexes)
    assert "(project, key, value, completion_id)" in str(indexes)
    assert "(project, completion_id, key)" in str(indexes)


async def test_days_every_window_has_passed_are_dropped_not_deleted(
    store: PostgresStore, postgres_url: str
) -> None:
    mine, theirs = spread(MONDAY), spread(MONDAY, project="other", per_day=1)
    await insert_all(store, [*mine, *theirs])
    # Every project's records end before Wednesday: Monday's and Tuesday's leaves go.
    cutoffs = Cutoffs(content_before=before(MONDAY + timedelta(days=2)),
                      records_before=before(MONDAY + timedelta(days=2)))  # fmt: skip

    counted = await store.purge(lambda project: cutoffs, dry_run=True)
    found = await store.purge(lambda project: cutoffs)

    assert found == counted == {"proj": PurgeCount(records=4), "other": PurgeCount(records=2)}
    have = await layout(postgres_url)
    for table, _ in partitions.TABLES:
        assert have[table][MONDAY] == days(MONDAY + timedelta(days=2), 5)
    assert not any([await served(store, c) for c in mine[:4]])
    assert all([await served(store, c) for c in mine[4:]])
    listed = [item["id"] for item in await store.list("proj", ListQuery(order="asc"))]
    assert listed == [c.id for c in mine[4:]]
    # Nothing was deleted row by row: no dead rows to vacuum anywhere in the week.
    dead = await scalar(
        postgres_url,
        "SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE relname LIKE '%_d%'",
    )
    assert dead == 0


async def test_a_days_content_goes_before_its_records(
    store: PostgresStore, postgres_url: str
) -> None:
    mine = spread(MONDAY)
    await insert_all(store, mine)
    # Content kept 1 day less than records: Monday goes whole, Tuesday's text only.
    cutoffs = Cutoffs(content_before=before(MONDAY + timedelta(days=2)),
                      records_before=before(MONDAY + timedelta(days=1)))  # fmt: skip

    assert await store.purge(lambda project: cutoffs) == {"proj": PurgeCount(content=2, records=2)}

    have = await layout(postgres_url)
    tuesday = MONDAY + timedelta(days=1)
    assert have["completions"][MONDAY] == days(tuesday, 6)
    assert have["completion_content"][MONDAY] == days(tuesday + timedelta(days=1), 5)
    assert have["completion_metadata"][MONDAY] == days(tuesday + timedelta(days=1), 5)
    assert not any([await served(store, c) for c in mine[:4]])
    assert await store.messages("proj", mine[2].id) is None
    assert await store.list("proj", ListQuery(metadata={"team": "a"}, limit=3)) != []
    # Tuesday's records stay, with their usage and metadata, until their own window.
    records = await scalar(
        postgres_url,
        f"SELECT count(*) FROM {partitions.day_name('completions', tuesday)} "
        "WHERE usage IS NOT NULL AND metadata::text LIKE '%team%'",
    )
    assert records == 2
    later = Cutoffs(content_before=before(MONDAY + timedelta(days=2)),
                    records_before=before(MONDAY + timedelta(days=2)))  # fmt: skip
    assert await store.purge(lambda project: later) == {"proj": PurgeCount(records=2)}
    assert tuesday not in ((await layout(postgres_url))["completions"][MONDAY] or ())


async def test_a_cutoff_inside_a_day_deletes_up_to_it_and_vacuums_that_day_only(
    store: PostgresStore, postgres_url: str
) -> None:
    mine = [at(MONDAY + timedelta(days=1), n * 3_600_000) for n in range(6)]
    mine += spread(MONDAY + timedelta(days=7))  # the next week
    await insert_all(store, mine)
    cut = completion_id_floor(ms_of(MONDAY + timedelta(days=1)) + 3 * 3_600_000)

    assert await store.purge(lambda project: Cutoffs(cut, cut)) == {"proj": PurgeCount(records=3)}

    assert [await served(store, c) for c in mine[:6]] == [False] * 3 + [True] * 3
    vacuumed = await scalar(
        postgres_url,
        "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_stat_user_tables "
        "WHERE last_vacuum IS NOT NULL",
    )
    tuesday = f"{MONDAY + timedelta(days=1):%Y%m%d}"
    assert vacuumed == ",".join(sorted(f"{table}_d{tuesday}" for table, _ in partitions.TABLES))


async def test_weeks_of_the_previous_version_and_of_this_one_purge_side_by_side(
    postgres_url: str,
) -> None:
    old_week, new_week = MONDAY, MONDAY + timedelta(days=7)
    # What the previous version left: its weeks one plain table each, filled.
    await PostgresStore(postgres_url).upgrade()
    await previous_version_week(postgres_url, old_week)
    store = PostgresStore(postgres_url, pool_min=1, pool_max=4)
    await store.open()  # this version: keeps them as they are
    try:
        old, new = spread(old_week), spread(new_week)
        await insert_all(store, [*old, *new])
        have = await layout(postgres_url)
        assert all(have[table][old_week] is None for table, _ in partitions.TABLES)
        assert all(have[table][new_week] == days(new_week, 7) for table, _ in partitions.TABLES)
        walked = [item["id"] for item in await store.list("proj", ListQuery(limit=100))]
        assert walked == [c.id for c in [*old, *new]]

        # Three days into each: the old week in batches (it stays one table), the new
        # week's three days dropped.
        cut = before(new_week + timedelta(days=3))
        old_cut = before(old_week + timedelta(days=3))
        assert await store.purge(lambda project: Cutoffs(old_cut, old_cut)) == {
            "proj": PurgeCount(records=6)
        }
        assert (await layout(postgres_url))["completions"][old_week] is None
        assert await store.purge(lambda project: Cutoffs(cut, cut)) == {
            "proj": PurgeCount(records=8 + 6)
        }
        have = await layout(postgres_url)
        assert old_week not in have["completions"]  # passed whole: dropped whole
        assert have["completions"][new_week] == days(new_week + timedelta(days=3), 4)
        walked = [item["id"] for item in await store.list("proj", ListQuery(limit=100))]
        assert walked == [c.id for c in new[6:]]
        # A row for a day retention dropped (an import of old data) gets its leaf again.
        back = at(new_week, 99)
        await store.insert(back)
        assert await served(store, back)
        assert new_week in ((await layout(postgres_url))["completion_content"][new_week] or ())
    finally:
        await store.close()


async def test_a_stopped_detach_of_a_day_is_finished_by_the_next_purge(
    store: PostgresStore, postgres_url: str
) -> None:
    mine = spread(MONDAY, per_day=1)
    await insert_all(store, mine)
    conn = await asyncpg.connect(postgres_url)
    try:
        # A detach whose second transaction never ran (its server stopped): simulated by
        # cancelling the wait of a concurrent detach held up by an open transaction.
        leaf = partitions.day_name("completions", MONDAY)
        week = partitions.partition_name("completions", MONDAY)
        holder = await asyncpg.connect(postgres_url)
        try:
            await holder.execute(f"BEGIN; SELECT count(*) FROM {week}")
            await conn.execute("SET statement_timeout = '500ms'")
            with pytest.raises(asyncpg.QueryCanceledError):
                await conn.execute(f"ALTER TABLE {week} DETACH PARTITION {leaf} CONCURRENTLY")
        finally:
            await holder.close()
        pending = await partitions.layout(conn, pending=True)
        assert pending["completions"] == {MONDAY: frozenset({MONDAY})}
    finally:
        await conn.close()
    later = Cutoffs(None, before(date(2026, 8, 1)))  # removes nothing else
    await store.purge(lambda project: later)
    assert not await scalar(postgres_url, f"SELECT to_regclass('{leaf}') IS NOT NULL")


async def test_a_week_whose_content_is_made_again_after_its_days_went_is_read(
    store: PostgresStore, postgres_url: str
) -> None:
    await insert_all(store, spread(MONDAY, per_day=1))
    # The content window passes the whole week, the record window its first two days.
    cutoffs = Cutoffs(content_before=before(MONDAY + timedelta(days=8)),
                      records_before=before(MONDAY + timedelta(days=2)))  # fmt: skip
    assert await store.purge(lambda project: cutoffs) == {"proj": PurgeCount(content=5, records=2)}
    have = await layout(postgres_url)
    assert MONDAY not in have["completion_content"]
    assert have["completions"][MONDAY] == days(MONDAY + timedelta(days=2), 5)

    # A row for that week again (an import): its content week is made again, all seven
    # days, while its records lack the first two; pages and gets read what is there.
    back = at(MONDAY + timedelta(days=3), 7, metadata={"team": "a"})
    await store.insert(back)
    have = await layout(postgres_url)
    assert have["completion_content"][MONDAY] == days(MONDAY, 7)
    for order in ("asc", "desc"):
        for query in (ListQuery(order=order), ListQuery(order=order, metadata={"team": "a"})):
            assert [item["id"] for item in await store.list("proj", query)] == [back.id]
    assert await served(store, back)
    assert not await served(store, at(MONDAY, 0))
