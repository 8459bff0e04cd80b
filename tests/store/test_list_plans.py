"""A filter on several metadata pairs costs what its sparsest pair costs, whatever the
order the client wrote the pairs in: on SQLite, which keeps no statistics to choose by, and
on PostgreSQL, whose generic plans for prepared statements cannot see which value is rare.

What a user would notice: `metadata[env]=prod&metadata[user]=u1` taking seconds on a big
store while `metadata[user]=u1&metadata[env]=prod` takes a millisecond.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chatkeep.protocol.queries import ListQuery, Order
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.queries import list_sql, reach_sql, sparsest_first
from chatkeep.store.schema import for_sqlite
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3
from tests.store.test_store_contract import new_completion, walk

pytestmark = pytest.mark.anyio

COMMON, RARE = ("env", "prod"), ("user", "rare")


def test_sparsest_first_moves_the_sparsest_pair_to_the_front() -> None:
    three = {"a": "1", "b": "2", "c": "3"}
    asc, desc = ListQuery(metadata=three), ListQuery(metadata=three, order="desc")

    # Reaching farther in the page's direction means fewer entries: sparser.
    assert list(sparsest_first(asc, ["id5", "id9", "id7"]).metadata) == ["b", "a", "c"]
    assert list(sparsest_first(desc, ["id5", "id9", "id7"]).metadata) == ["a", "b", "c"]
    # A pair with fewer entries left than the probe's depth beats any that has more.
    assert list(sparsest_first(asc, ["id9", "id5", None]).metadata) == ["c", "a", "b"]
    assert sparsest_first(asc, ["id1", "id1", "id1"]) == asc
    assert sparsest_first(asc, ["id5", "id9", "id7"]).metadata == three  # same pairs


async def vm_steps(path: Path, query: ListQuery, *, choose: bool) -> tuple[int, list[str], str]:
    """SQLite VM instructions a page costs (a measure of rows walked), its ids, and its
    plan; `choose`: as the store runs it (sparsest pair first), else in the given order."""

    def run() -> tuple[int, list[str], str]:
        conn = sqlite3.connect(path)
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        try:
            ordered = query
            if choose:
                sql, params = reach_sql("proj", query)
                ordered = sparsest_first(query, conn.execute(for_sqlite(sql), params).fetchone())
            sql, params = list_sql("proj", ordered, "sqlite")
            plan = " | ".join(
                r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {for_sqlite(sql)}", params)
            )
            conn.set_progress_handler(count, 1)
            rows = conn.execute(for_sqlite(sql), params).fetchall()
            conn.set_progress_handler(None, 1)
        finally:
            conn.close()
        return steps, [row[0].split('"id":"', 1)[1][:38] for row in rows], plan

    return await asyncio.to_thread(run)


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_sqlite_walks_the_sparsest_pair_in_either_key_order(
    tmp_path: Path, order: Order
) -> None:
    path = tmp_path / "plans.db"
    store = SQLiteStore(path)
    await store.open()
    completions = [
        new_completion(metadata=dict([COMMON, RARE]) if i % 200 == 7 else dict([COMMON]))
        for i in range(1000)
    ]
    await asyncio.gather(*(store.insert(c) for c in completions))
    rare = [c.id for c in completions if c.metadata.get("user") == "rare"]
    try:
        for pairs in ([COMMON, RARE], [RARE, COMMON]):
            query = ListQuery(limit=2, order=order, metadata=dict(pairs))
            expected = rare if order == "asc" else rare[::-1]
            assert await walk(store, "proj", query) == expected
    finally:
        await store.close()

    written_order = ListQuery(limit=20, order=order, metadata=dict([COMMON, RARE]))
    chosen, ids, plan = await vm_steps(path, written_order, choose=True)
    as_written, same_ids, _ = await vm_steps(path, written_order, choose=False)

    assert ids == same_ids == (rare if order == "asc" else rare[::-1])
    assert chosen * 20 < as_written, (chosen, as_written)
    # The other pair is checked before the completion is read, never after.
    assert plan.index("SEARCH m0") < plan.index("SEARCH m1") < plan.index("SEARCH c"), plan
    assert "TEMP B-TREE" not in plan


def driving_rows(plan: Any) -> int:
    """Index entries the plan's driving scan (alias m0, or m0_N on each of its partitions)
    read: returned plus filtered out."""
    if plan.get("Alias", "").split("_")[0] == "m0":
        return int(plan["Actual Rows"]) + int(plan.get("Rows Removed by Filter", 0))
    return sum(driving_rows(child) for child in plan.get("Plans", []))


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_postgres_walks_the_sparsest_pair_even_with_a_generic_plan(
    postgres_url: str, order: Order
) -> None:
    store = PostgresStore(postgres_url, pool_min=1, pool_max=4)
    await store.open()
    completions = [
        new_completion(metadata=dict([COMMON, RARE]) if i % 200 == 7 else dict([COMMON]))
        for i in range(1000)
    ]
    try:
        await asyncio.gather(*(store.insert(c) for c in completions))
        rare = [c.id for c in completions if c.metadata.get("user") == "rare"]
        for pairs in ([COMMON, RARE], [RARE, COMMON]):
            query = ListQuery(limit=2, order=order, metadata=dict(pairs))
            assert await walk(store, "proj", query) == (rare if order == "asc" else rare[::-1])
    finally:
        await store.close()

    # What a prepared statement runs after five executions: a plan blind to the values.
    query = ListQuery(limit=20, order=order, metadata=dict([COMMON, RARE]))
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("ANALYZE; SET plan_cache_mode = force_generic_plan")
        sql, params = reach_sql("proj", query)
        ordered = sparsest_first(query, tuple(await conn.fetchrow(sql, *params)))
        sql, params = list_sql("proj", ordered, "postgres")
        explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *params)
    finally:
        await conn.close()

    assert list(ordered.metadata) == ["user", "env"]
    assert driving_rows(json.loads(explained)[0]["Plan"]) == len(rare)
