"""PostgreSQL's week partitions: their bounds, made ahead and on demand, dropped whole by
retention when every project's window has passed a week, and made for every week an
older database holds when it is upgraded."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg
import pytest

from chatkeep.ids import completion_id_floor, completion_id_ms
from chatkeep.protocol.queries import ListQuery
from chatkeep.store import postgres_partitions as partitions
from chatkeep.store.base import Cutoffs, NewCompletion, PurgeCount
from chatkeep.store.postgres import PostgresStore
from tests.store.test_retention_store import minted_at
from tests.store.test_store_contract import insert_all, new_completion

pytestmark = pytest.mark.anyio
DAY_MS = 86_400_000


def ms_of(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


def test_a_week_runs_from_monday_and_its_bounds_are_the_ids_minted_in_it() -> None:
    monday = date(2026, 11, 30)
    low, high = partitions.week_bounds(monday)
    assert low == completion_id_floor(ms_of(monday))
    assert high == completion_id_floor(ms_of(date(2026, 12, 7)))
    first, last = completion_id_floor(ms_of(monday)), completion_id_floor(ms_of(monday) - 1)
    assert partitions.week_of(first) == monday
    assert partitions.week_of(last) == date(2026, 11, 23)  # Sunday 23:59:59.999: before
    assert partitions.week_of_day(date(2026, 12, 6)) == monday
    assert completion_id_ms(first) == ms_of(monday)
    with pytest.raises(ValueError):
        completion_id_ms("chatcmpl-short")
    # Ids of no week from 2020 to 2099 (an older release's, a random one like OpenAI's,
    # any text at all) have a partition too: a catch-all at either end.
    assert partitions.week_of(completion_id_floor(ms_of(date(2019, 12, 29)))) == partitions.BEFORE
    assert partitions.week_of("chatcmpl-0000000000AAAAAAAAAAAAAAAAAAAAA") == partitions.BEFORE
    assert partitions.week_of("chatcmpl-Zk3v0a9LmQ8bN2cD4eF6gH7iJ1kL5m") == partitions.AFTER
    assert (
        partitions.week_of("") == partitions.BEFORE and partitions.week_of("~") == partitions.AFTER
    )
    assert partitions.week_bounds(partitions.BEFORE)[0] is None
    assert partitions.week_bounds(partitions.AFTER)[1] is None


@pytest.fixture
def store(postgres_store: PostgresStore) -> PostgresStore:
    return postgres_store  # every test here is PostgreSQL's alone


async def weeks(url: str) -> dict[str, set[date]]:
    conn = await asyncpg.connect(url)
    try:
        return await partitions.existing(conn)
    finally:
        await conn.close()


async def served(store: PostgresStore, c: NewCompletion) -> bool:
    return await store.get(c.project, c.id) is not None


def at(day: date, n: int, project: str = "proj", **kw: object) -> NewCompletion:
    return minted_at(ms_of(day), n, project=project, **kw)  # type: ignore[arg-type]


async def test_this_week_and_the_next_are_made_ahead_and_any_other_on_demand(
    store: PostgresStore, postgres_url: str
) -> None:
    ahead = set(partitions.weeks_ahead())
    assert all(found == ahead for found in (await weeks(postgres_url)).values())

    # A week long gone and one far ahead (a clock set back, or forward): made as needed.
    old, future = at(date(2021, 3, 3), 0), at(date(2031, 7, 9), 0, metadata={"k": "v"})
    await insert_all(store, [old, future])
    assert await served(store, old) and await served(store, future)
    made = {date(2021, 3, 1), date(2031, 7, 7)}
    assert all(found == ahead | made for found in (await weeks(postgres_url)).values())

    # Ids of no week: the catch-alls, made on demand too, and a list walks across them.
    odd = [
        new_completion(completion_id="chatcmpl-0000000000AAAAAAAAAAAAAAAAAAAAA"),
        new_completion(completion_id="chatcmpl-Zk3v0a9LmQ8bN2cD4eF6gH7iJ1kL5m"),
    ]
    await insert_all(store, odd)
    assert all([await served(store, c) for c in odd])
    made |= {partitions.BEFORE, partitions.AFTER}
    assert all(found == ahead | made for found in (await weeks(postgres_url)).values())
    listed = [item["id"] for item in await store.list("proj", ListQuery(limit=10))]
    assert listed == sorted(c.id for c in [old, future, *odd])


async def test_whole_weeks_every_window_has_passed_are_dropped_not_deleted(
    store: PostgresStore, postgres_url: str
) -> None:
    gone = [at(date(2026, 9, 2), n, metadata={"team": "a"}) for n in range(4)]  # week of 8-31
    other_gone = [at(date(2026, 9, 3), n, project="other") for n in range(2)]
    textless = [at(date(2026, 10, 14), n, metadata={"team": "a"}) for n in range(3)]
    straddling = [at(date(2026, 11, 2), 0), at(date(2026, 11, 7), 0)]  # week of 11-02
    kept = at(date(2026, 12, 2), 0)
    await insert_all(store, [*gone, *other_gone, *textless, *straddling, kept])
    # What 30 days of content and 60 of records give on Dec 3: Nov 3 (a Tuesday), Oct 4.
    cutoffs = Cutoffs(
        content_before=completion_id_floor(ms_of(date(2026, 11, 3))),
        records_before=completion_id_floor(ms_of(date(2026, 10, 4))),
    )

    counted = await store.purge(lambda project: cutoffs, dry_run=True)
    found = await store.purge(lambda project: cutoffs)

    expected = {
        "proj": PurgeCount(content=4, records=4),
        "other": PurgeCount(records=2),
    }
    assert found == counted == expected
    have = await weeks(postgres_url)
    assert date(2026, 8, 31) not in have["completions"]  # dropped whole, both projects'
    # The week of Oct 12: its content and filter rows dropped whole, its records kept.
    assert date(2026, 10, 12) in have["completions"]
    assert date(2026, 10, 12) not in have["completion_content"]
    assert date(2026, 10, 12) not in have["completion_metadata"]
    # The week of Nov 2 straddles the content cutoff: its first day's content went in a
    # batch, the partition stays.
    assert date(2026, 11, 2) in have["completion_content"]
    assert not await served(store, straddling[0]) and await served(store, straddling[1])
    assert await served(store, kept)
    conn = await asyncpg.connect(postgres_url)
    try:
        records = await conn.fetchval("SELECT count(*) FROM completions WHERE project = 'proj'")
        pairs = await conn.fetchval("SELECT count(*) FROM completion_metadata")
    finally:
        await conn.close()
    assert records == len(textless) + len(straddling) + 1 and pairs == 0


async def test_a_week_one_project_still_keeps_is_purged_row_by_row_for_the_others(
    store: PostgresStore, postgres_url: str
) -> None:
    week = date(2026, 9, 7)
    short = [at(week, n, project="short") for n in range(5)]
    kept = [at(week, n, project="keeper") for n in range(2)]
    await insert_all(store, [*short, *kept])
    limits = {
        "short": Cutoffs(None, completion_id_floor(ms_of(date(2026, 10, 1)))),
        "keeper": Cutoffs(None, None),  # forever
    }

    assert await store.purge(limits.__getitem__) == {
        "short": PurgeCount(records=5),
        "keeper": PurgeCount(),
    }
    assert week in (await weeks(postgres_url))["completions"]
    assert all([await served(store, c) for c in kept])
    assert not any([await served(store, c) for c in short])


async def test_a_purge_of_one_project_never_drops_a_shared_week(
    store: PostgresStore, postgres_url: str
) -> None:
    week = date(2026, 9, 7)
    await insert_all(store, [at(week, 0, project="a"), at(week, 1, project="b")])
    cutoff = Cutoffs(None, completion_id_floor(ms_of(date(2026, 10, 1))))

    assert await store.purge(lambda project: cutoff, project="a") == {"a": PurgeCount(records=1)}
    assert week in (await weeks(postgres_url))["completions"]


async def test_an_upgrade_makes_a_partition_for_every_week_the_old_tables_hold(
    postgres_url: str,
) -> None:
    await PostgresStore(postgres_url).upgrade(through="0003_api_keys")
    spread = [
        at(date(2025, 1, 1), 0),
        at(date(2025, 1, 6), 1, project="b"),
        at(date(2026, 6, 30), 2),
    ]
    conn = await asyncpg.connect(postgres_url)
    try:
        for c in spread:
            await conn.execute(
                "INSERT INTO completions (project, id, model, created, completion, metadata, "
                "messages) VALUES ($1, $2, $3, $4, $5, '{\"k\": \"v\"}', '[]')",
                c.project, c.id, c.model, c.created, f'{{"id": "{c.id}", "choices": []}}',
            )  # fmt: skip
        await conn.execute(
            "INSERT INTO completion_metadata SELECT project, id, 'k', 'v' FROM completions"
        )
    finally:
        await conn.close()

    await PostgresStore(postgres_url).upgrade()

    wanted = {date(2024, 12, 30), date(2025, 1, 6), date(2026, 6, 29)}
    assert all(wanted <= found for found in (await weeks(postgres_url)).values())
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        for c in spread:
            assert (await store.get(c.project, c.id) or {}).get("metadata") == {"k": "v"}
    finally:
        await store.close()
