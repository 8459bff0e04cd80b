"""Store fixtures: every engine on a real database, fresh per test.

SQLite lives in `tmp_path`; PostgreSQL gets a throwaway database (`postgres_url`, from
`tests/postgres_fixtures.py`), dropped afterwards, or the test is skipped saying why.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chatkeep.store.factory import MigratableStore
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.schema import for_sqlite
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3

ENGINES = ["sqlite", "postgres"]
StoreFactory = Callable[[], MigratableStore]
RawExecute = Callable[..., Awaitable[list[tuple[Any, ...]]]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def database(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where the test's database lives: a SQLite file path or a PostgreSQL URL."""
    if engine == "sqlite":
        return str(tmp_path / "chatkeep.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def make_store(engine: str, database: str) -> StoreFactory:
    """Builds unopened stores on the test's database (several may share it)."""
    if engine == "sqlite":
        return lambda: SQLiteStore(database, batch_size=64, read_threads=2)
    return lambda: PostgresStore(database, pool_min=1, pool_max=8)


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[MigratableStore]:
    opened = make_store()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@asynccontextmanager
async def opened_postgres(url: str, pool_max: int = 4) -> AsyncIterator[PostgresStore]:
    """An open PostgreSQL store of at most `pool_max` connections, closed afterwards."""
    opened = PostgresStore(url, pool_min=1, pool_max=pool_max)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def postgres_store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    """An open PostgreSQL store alone, for tests of its own layout (partitions, plans)."""
    async with opened_postgres(postgres_url) as opened:
        yield opened


@pytest.fixture
def raw_execute(engine: str, database: str) -> RawExecute:
    """Runs one `$n`-style statement on the test's database, around the store; returns rows."""

    async def on_sqlite(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            conn = sqlite3.connect(database, isolation_level=None)
            try:
                return [tuple(row) for row in conn.execute(for_sqlite(sql), params)]
            finally:
                conn.close()

        return await asyncio.to_thread(run)

    async def on_postgres(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(database, timeout=5)
        try:
            return [tuple(row) for row in await conn.fetch(sql, *params)]
        finally:
            await conn.close()

    return on_sqlite if engine == "sqlite" else on_postgres
