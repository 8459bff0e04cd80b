"""Store fixtures: every engine on a real database, fresh per test.

SQLite lives in `tmp_path`; PostgreSQL gets a throwaway database on the server named by
`CHATKEEP_TEST_POSTGRES_URL` (default: postgres on 127.0.0.1:5432), dropped afterwards.
Without a reachable server the PostgreSQL cases are skipped, saying why, unless
`CHATKEEP_REQUIRE_POSTGRES=1` (as in CI) makes that a failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from chatkeep.store.factory import MigratableStore
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.schema import for_sqlite
from chatkeep.store.sqlite import SQLiteStore

T = TypeVar("T")
ENGINES = ["sqlite", "postgres"]
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
StoreFactory = Callable[[], MigratableStore]
RawExecute = Callable[..., Awaitable[list[tuple[Any, ...]]]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def run_aside(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on its own loop in another thread, from a synchronous fixture,
    without touching the event loop the test runs on."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro()).result()


def with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get("CHATKEEP_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)

    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=3)
        await conn.close()

    try:
        run_aside(probe)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL is not reachable at {url.split('@')[-1]} ({exc!r})"
        if os.environ.get("CHATKEEP_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}, and CHATKEEP_REQUIRE_POSTGRES=1", pytrace=False)
        pytest.skip(f"{reason}; set CHATKEEP_TEST_POSTGRES_URL to test that engine")
    return url


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"chatkeep_test_{secrets.token_hex(6)}"
    run_aside(lambda: _admin(postgres_admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(postgres_admin_url, name)
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        run_aside(lambda: _admin(postgres_admin_url, drop))


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
