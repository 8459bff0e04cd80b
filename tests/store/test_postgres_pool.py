"""The PostgreSQL store's pool (`store/postgres_pool.py`): a connection keeps the
statements of many days, a connection given back costs no round trip of its own, and
carries nothing over to the next call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from chatkeep.store.postgres import PostgresStore
from chatkeep.store.postgres_pool import STATEMENT_CACHE_SIZE
from tests.store.conftest import opened_postgres

pytestmark = pytest.mark.anyio


@pytest.fixture
async def one_connection(postgres_url: str) -> AsyncIterator[PostgresStore]:
    """A store whose every call runs on the same pooled connection."""
    async with opened_postgres(postgres_url, pool_max=1) as store:
        yield store


async def last_statement(url: str, pid: int) -> str:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return str(await conn.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid))
    finally:
        await conn.close()


async def test_a_pooled_connection_keeps_the_statements_of_many_days(
    one_connection: PostgresStore,
) -> None:
    """Each day a client reads has statements of its own (they name its leaves), so a
    pooled connection keeps `STATEMENT_CACHE_SIZE` prepared statements, not asyncpg's
    100: with 100 a connection serving a few weeks of filtered pages prepared its
    statements again and again (bench/README.md, "Lifecycle and scale")."""
    distinct = 150

    async def many(conn: Any) -> int:
        for n in range(distinct):
            assert await conn.fetchval(f"SELECT $1::int + {n}", 1) == n + 1
        kept: int = await conn.fetchval(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1::int + %'"
        )
        return kept

    assert distinct < STATEMENT_CACHE_SIZE
    assert await one_connection.run(many) == distinct


async def test_a_connection_given_back_sends_no_reset_statement(
    one_connection: PostgresStore, postgres_url: str
) -> None:
    """asyncpg's default reset (`SELECT pg_advisory_unlock_all(); CLOSE ALL; ...`) would be
    the backend's last statement after every call."""
    pid = await one_connection.run(lambda conn: conn.fetchval("SELECT pg_backend_pid()"))
    assert await last_statement(postgres_url, pid) == "SELECT pg_backend_pid()"
    assert await one_connection.run(lambda conn: conn.fetchval("SELECT pg_backend_pid()")) == pid


async def test_a_transaction_left_open_is_rolled_back_when_its_connection_returns(
    one_connection: PostgresStore, postgres_url: str
) -> None:
    async def leave_open(conn: Any) -> int:
        await conn.execute("BEGIN")
        await conn.execute("CREATE TABLE pool_left_open (n int)")
        return int(await conn.fetchval("SELECT pg_backend_pid()"))

    pid = await one_connection.run(leave_open)

    async def after(conn: Any) -> tuple[int, bool, Any]:
        pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
        return (
            pid,
            conn.is_in_transaction(),
            await conn.fetchval("SELECT to_regclass('pool_left_open')"),
        )

    assert await one_connection.run(after) == (pid, False, None)


async def test_the_purge_lock_is_free_on_its_pooled_connection_once_released(
    one_connection: PostgresStore,
) -> None:
    """The pool clears no session lock, so the purge releases its own."""
    async with one_connection.purge_lock() as held:
        assert held
    held_locks = await one_connection.run(
        lambda conn: conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
    )
    assert held_locks == 0
