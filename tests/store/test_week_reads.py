"""Reads on PostgreSQL name one week's partitions (`postgres_weeks`): pages that cross
weeks in either order, with every filter; ids of weeks with no partition; partitions
made and dropped by another server meanwhile; and a page's plan, even generic, reads only
what the page needs."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from chatkeep.protocol.queries import ListQuery, Order
from chatkeep.store import postgres_partitions as partitions
from chatkeep.store import postgres_weeks as weeks
from chatkeep.store.base import Cutoffs, NewCompletion
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.queries import list_sql, reach_sql, sparsest_first
from tests.store.conftest import opened_postgres
from tests.store.test_day_partitions import layout
from tests.store.test_partitions import at
from tests.store.test_store_contract import insert_all, new_completion, walk

pytestmark = pytest.mark.anyio


@pytest.fixture
def store(postgres_store: PostgresStore) -> PostgresStore:
    return postgres_store  # every test here is PostgreSQL's alone


def spread() -> list[NewCompletion]:
    """Three completions a day over five weeks (one week empty), two projects, two models,
    a pair on every other one; in id order."""
    days = [date(2026, 10, 5) + timedelta(days=n) for n in range(0, 35, 2) if not 12 <= n < 21]
    made = []
    for n, day in enumerate(days):
        for k in range(3):
            made.append(
                at(
                    day,
                    k,
                    project="proj" if k < 2 else "other",
                    model="m1" if (n + k) % 3 else "m2",
                    metadata={"team": "a", "env": "prod" if n % 2 else "dev"},
                )
            )
    return made


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 4, 100])
async def test_pages_cross_weeks_in_order_with_every_filter(
    store: PostgresStore, order: Order, limit: int
) -> None:
    made = spread()
    await insert_all(store, made)
    assert len({partitions.week_of(c.id) for c in made}) == 4

    def expected(project: str, model: str | None, pairs: dict[str, str]) -> list[str]:
        ids = [
            c.id
            for c in made
            if c.project == project
            and model in (None, c.model)
            and pairs.items() <= c.metadata.items()
        ]
        return ids if order == "asc" else ids[::-1]

    for project, model, pairs in [
        ("proj", None, {}),
        ("other", None, {}),
        ("proj", "m2", {}),
        ("proj", None, {"env": "prod"}),
        ("proj", "m1", {"team": "a", "env": "dev"}),
        ("nobody", None, {}),
    ]:
        query = ListQuery(limit=limit, order=order, model=model, metadata=pairs)
        assert await walk(store, project, query) == expected(project, model, pairs)

    # A cursor in a week with no partition (an id of no completion) still pages on.
    cursor = partitions.week_bounds(date(2026, 10, 19))[0]
    assert cursor is not None
    rest = [i for i in expected("proj", None, {}) if (i > cursor if order == "asc" else i < cursor)]
    assert await walk(store, "proj", ListQuery(limit=limit, order=order, after=cursor)) == rest


async def test_ids_of_weeks_without_partitions_are_not_found(store: PostgresStore) -> None:
    c = new_completion()
    await store.insert(c)
    for unknown in [
        "chatcmpl-0000000000AAAAAAAAAAAAAAAAAAAAA",  # before 2020: a catch-all never made
        "chatcmpl-Zk3v0a9LmQ8bN2cD4eF6gH7iJ1kL5m",  # after 2099
        at(date(2024, 2, 7), 0).id,  # a week never made
        "x",
    ]:
        assert await store.get("proj", unknown) is None
        assert await store.messages("proj", unknown) is None
        assert await store.update_metadata("proj", unknown, {"k": "v"}) is None
        assert await store.delete("proj", unknown) is False
    assert await store.get("proj", c.id) is not None


async def test_weeks_another_server_makes_or_drops_are_read_as_they_are(
    store: PostgresStore, postgres_url: str
) -> None:
    old = [at(date(2026, 9, 2), n, metadata={"k": "v"}) for n in range(3)]
    await insert_all(store, old)
    assert await store.get("proj", old[0].id) is not None
    assert len(await store.list("proj", ListQuery(metadata={"k": "v"}))) == 3

    # Another server drops that week: reads here answer "not found", never an error,
    # from statements this server has already prepared on those partitions.
    async with opened_postgres(postgres_url) as other:
        cut = partitions.week_bounds(date(2026, 8, 31))[1]
        await other.purge(lambda project: Cutoffs(cut, cut))
        assert await store.get("proj", old[0].id) is None
        assert await store.messages("proj", old[1].id) is None
        assert await store.update_metadata("proj", old[1].id, {"a": "b"}) is None
        assert await store.delete("proj", old[2].id) is False
        assert await store.list("proj", ListQuery(metadata={"k": "v"})) == []

        # ... and makes a week this server has never seen: its ids are found at once.
        new = at(date(2025, 5, 5), 0)
        await other.insert(new)
        assert (await store.get("proj", new.id) or {}).get("id") == new.id
        assert [item["id"] for item in await store.list("proj", ListQuery())] == [new.id]


def row(week: date) -> tuple[str, str, bool, bool]:
    """The catalog's row of a week's content partition, as `partitions.layout` reads it."""
    return (
        "completion_content",
        partitions.partition_name("completion_content", week),
        False,
        False,
    )


class CountingConnection:
    """Stands in for a connection: the catalog reads `ServedWeeks` makes (its checks of the
    catalog's signature, and its reads of the whole layout) and its lookups of one week's
    partition by name, counted. `held`, when set, holds every catalog read until it is set
    again."""

    def __init__(self, found: list[date]) -> None:
        self.checks = self.reads = self.lookups = 0
        self.held: asyncio.Event | None = None
        self.rows = [row(week) for week in found]

    async def fetch(self, sql: str, *args: object) -> list[tuple[str, str, bool, bool]]:
        self.reads += 1
        rows = list(self.rows)  # what the catalog held when the read began
        if self.held is not None:
            await self.held.wait()
        return rows

    async def fetchval(self, sql: str, arg: object) -> object:
        if sql == partitions._SIGNATURE:
            self.checks += 1
            return repr(sorted(self.rows))
        self.lookups += 1
        return any(row[1] == arg for row in self.rows)


async def test_the_catalog_is_read_once_a_second_and_made_up_ids_never_read_it() -> None:
    now = [100.0]
    served = weeks.ServedWeeks(max_age=1.0, clock=lambda: now[0])
    week = date(2026, 11, 30)
    conn: Any = CountingConnection([week, date(2026, 11, 23)])

    assert [span.tables for span in await served.ordered(conn)] == [
        weeks.tables_of(date(2026, 11, 23)),
        weeks.tables_of(week),
    ]
    assert (conn.checks, conn.reads) == (1, 1)
    now[0] += 0.5
    await served.ordered(conn)
    assert (conn.checks, conn.reads) == (1, 1)
    assert await served.tables_for(conn, partitions.week_bounds(week)[0] or "") is not None
    assert (conn.reads, conn.lookups) == (1, 0)  # a week it knows: nothing to read

    # Ids of weeks without partitions: one lookup by name each, never a catalog read.
    made_up = [f"chatcmpl-{n:040d}" for n in range(50)]
    for made in made_up:
        assert await served.tables_for(conn, made) is None
    assert (conn.reads, conn.lookups) == (1, 50)

    # A week made by another server since: found by name, and the weeks read anew.
    conn.rows.append(row(date(2024, 2, 5)))
    found = await served.tables_for(conn, partitions.week_bounds(date(2024, 2, 5))[0] or "")
    assert found == weeks.tables_of(date(2024, 2, 5))
    assert found in [span.tables for span in await served.ordered(conn)]
    assert conn.reads == 2

    # A second later the signature is checked; unchanged, the layout is not read again.
    now[0] += 2
    await served.ordered(conn)
    assert (conn.checks, conn.reads) == (3, 2)
    # Changed (another server dropped a week), it is.
    conn.rows.remove(row(week))
    now[0] += 2
    assert [span.tables for span in await served.ordered(conn)] == [
        weeks.tables_of(date(2024, 2, 5)),
        weeks.tables_of(date(2026, 11, 23)),
    ]
    assert (conn.checks, conn.reads) == (4, 3)
    # Told to forget (this store made or dropped partitions), it reads whatever the
    # signature says.
    served.forget()
    await served.ordered(conn)
    assert (conn.checks, conn.reads) == (5, 4)


async def test_calls_during_a_catalog_read_serve_the_layout_as_it_was() -> None:
    now = [100.0]
    served = weeks.ServedWeeks(max_age=1.0, clock=lambda: now[0])
    old, new = date(2026, 11, 23), date(2026, 11, 30)
    conn: Any = CountingConnection([old])
    assert [span.tables for span in await served.ordered(conn)] == [weeks.tables_of(old)]

    # A week made since, and a second gone by: the first call reads; the calls meanwhile
    # neither wait for it nor read themselves.
    conn.rows.append(row(new))
    now[0] += 2
    conn.held = asyncio.Event()
    reading = asyncio.create_task(served.ordered(conn))
    await asyncio.sleep(0)
    async with asyncio.timeout(5):  # a call that waited would wait for ever here
        for _ in range(20):
            assert [span.tables for span in await served.ordered(conn)] == [weeks.tables_of(old)]
    assert (conn.checks, conn.reads) == (2, 2)
    conn.held.set()
    assert len(await reading) == 2
    assert [span.tables for span in await served.ordered(conn)] == [
        weeks.tables_of(old),
        weeks.tables_of(new),
    ]


async def test_a_catalog_read_that_ends_after_a_newer_one_does_not_put_back_what_it_saw() -> None:
    now = [100.0]
    served = weeks.ServedWeeks(max_age=1.0, clock=lambda: now[0])
    old, new = date(2026, 11, 23), date(2026, 11, 30)
    conn: Any = CountingConnection([old])
    await served.ordered(conn)

    # A second on, a read begins while `old` is being dropped, and is slow ...
    now[0] += 2
    gate = conn.held = asyncio.Event()
    conn.rows = []
    slow = asyncio.create_task(served.ordered(conn))
    await asyncio.sleep(0)  # it checks the signature, then waits in its read
    assert conn.reads == 2
    # ... meanwhile `new` is made and an id of it read: the catalog is read again, at once.
    conn.held = None
    conn.rows = [row(new)]
    assert await served.tables_for(conn, partitions.week_bounds(new)[0] or "") == (
        weeks.tables_of(new)
    )
    # The slow read ends last, with what it saw before: the newer layout stays.
    gate.set()
    await slow
    assert [span.tables for span in await served.ordered(conn)] == [weeks.tables_of(new)]
    assert conn.reads == 3


async def test_the_catalog_signature_changes_with_every_partition_made_or_dropped(
    store: PostgresStore, postgres_url: str
) -> None:
    monday = date(2025, 5, 5)  # a week the store did not make ahead
    conn = await asyncpg.connect(postgres_url)
    try:
        before = await partitions.signature(conn)
        assert await partitions.signature(conn) == before  # nothing changed: the same
        await partitions.ensure(conn, [monday])  # a week made, with its day leaves
        made = await partitions.signature(conn)
        assert made != before
        await partitions.drop_day(conn, ["completion_metadata"], monday)  # one leaf gone
        dropped = await partitions.signature(conn)
        assert dropped not in (before, made)
        await partitions.ensure(conn, [], [monday])  # that leaf made again: a new table
        assert await partitions.signature(conn) not in (before, made, dropped)
    finally:
        await conn.close()


def driving_rows(plan: Any) -> int:
    """Index entries the plan's driving scan (alias m0) read: returned plus filtered out."""
    if plan.get("Alias") == "m0" or plan.get("Alias", "").startswith("m0_"):  # or a leaf
        return int(plan["Actual Rows"]) + int(plan.get("Rows Removed by Filter", 0))
    return sum(driving_rows(child) for child in plan.get("Plans", []))


def relations(plan: Any) -> set[str]:
    found = {plan["Relation Name"]} if "Relation Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= relations(child)
    return found


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("named", ["week", "day"])
async def test_a_generic_plan_of_a_week_walks_the_sparsest_pair_and_reads_that_week_only(
    store: PostgresStore, postgres_url: str, order: Order, named: str
) -> None:
    monday = date(2026, 11, 30)
    common, rare = ("env", "prod"), ("user", "rare")
    made = [
        at(monday, n, metadata=dict([common, rare]) if n % 200 == 7 else dict([common]))
        for n in range(1000)
    ]
    older = at(date(2026, 11, 23), 0, metadata=dict([common, rare]))
    await insert_all(store, [*made, older])
    rare_ids = [c.id for c in made if c.metadata.get("user") == "rare"]
    # A week's table (planned over its seven day leaves, pruned as it runs), or one day's.
    t = weeks.tables_of(monday) if named == "week" else weeks.day_tables(monday)
    leaves = {
        partitions.day_name(table, day)
        for table, _ in partitions.TABLES
        for day in partitions.days_of(monday)
    }

    # What a prepared statement runs after five executions: a plan blind to the values.
    query = ListQuery(limit=2, order=order, metadata=dict([common, rare]))
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("ANALYZE; SET plan_cache_mode = force_generic_plan")
        sql, params = reach_sql("proj", query, t)
        ordered = sparsest_first(query, tuple(await conn.fetchrow(sql, *params)))
        sql, params = list_sql("proj", ordered, "postgres", t)
        explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *params)
        plain = list_sql("proj", ListQuery(limit=5, order=order), "postgres", t)
        unfiltered = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {plain[0]}", *plain[1])
    finally:
        await conn.close()

    assert list(ordered.metadata) == ["user", "env"]
    plan = json.loads(explained)[0]["Plan"]
    # The rare pair's index, walked until the page is full: limit + 1 entries, no more.
    assert driving_rows(plan) == query.limit + 1
    if named == "day":
        assert relations(plan) == {t.records, t.content, t.metadata}
        assert relations(json.loads(unfiltered)[0]["Plan"]) == {t.records, t.content}
    else:  # that week's leaves, never another week's
        assert relations(plan) <= leaves
        assert relations(json.loads(unfiltered)[0]["Plan"]) <= leaves
    page = await store.list("proj", query)
    # The store's page crosses from one week into the other as the order goes.
    every = [older.id, *rare_ids]
    assert [item["id"] for item in page] == (every if order == "asc" else every[::-1])[:3]


async def test_a_weeks_reach_probe_is_planned_for_its_values_every_time(
    store: PostgresStore, postgres_url: str
) -> None:
    monday = date(2026, 11, 30)
    await insert_all(store, [at(monday, n, metadata={"a": "1", "b": "2"}) for n in range(20)])
    query = ListQuery(limit=2, metadata={"a": "1", "b": "2"})
    week = weeks.spans(await layout(postgres_url))
    span = next(s for s in week if s.tables == weeks.tables_of(monday))
    sql, params = reach_sql("proj", query, span.tables)
    conn = await asyncpg.connect(postgres_url)
    try:
        for _ in range(12):  # past the five runs after which a generic plan may be reused
            await weeks._reach(conn, span, sql, params)
        generic, custom = await conn.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
            sql,
        )
    finally:
        await conn.close()
    assert (generic, custom) == (0, 12)
