"""PostgreSQL for the tests: throwaway databases on a real server, dropped afterwards.

The server is the one `CHATKEEP_TEST_POSTGRES_URL` names (default: postgres on
127.0.0.1:5432). Without a reachable server the PostgreSQL cases are skipped, saying why,
unless `CHATKEEP_REQUIRE_POSTGRES=1` (as in CI) makes that a failure. `tests/conftest.py`
imports the fixtures, so every test directory can ask for them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import asyncpg
import pytest

T = TypeVar("T")
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Tables a cleaned database keeps the rows of: the record of its applied migrations.
KEPT_TABLES = ("chatkeep_migrations",)
# Longest an `admin_execute` statement may run (DROP DATABASE ... WITH (FORCE) included).
ADMIN_STATEMENT_TIMEOUT_S = 60.0


def run_aside(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on its own loop in another thread, from a synchronous fixture,
    without touching the event loop the test runs on."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro()).result()


def with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def where(url: str) -> str:
    """Host, port and database of a URL, without the credentials, for messages."""
    return url.split("@")[-1]


async def admin_execute(url: str, statement: str) -> None:
    """Run `statement`, cancelled after `ADMIN_STATEMENT_TIMEOUT_S`: one queued behind a lock
    that is never released (and queueing all after it) fails its test, not hangs it."""
    conn = await asyncpg.connect(url, timeout=5, command_timeout=ADMIN_STATEMENT_TIMEOUT_S)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database(admin_url: str, prefix: str = "chatkeep_test") -> str:
    """A new empty database on the admin URL's server; returns its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    run_aside(lambda: admin_execute(admin_url, f'CREATE DATABASE "{name}"'))
    return with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    run_aside(lambda: admin_execute(admin_url, drop))


async def empty_tables(url: str) -> None:
    """Delete every row of every table chatkeep made, keeping the schema: far faster than
    a new database per test (no file copy, no migrations), and than TRUNCATE (no new files).
    Tables that others reference are emptied after those that reference them."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        tables = {
            row[0]
            for row in await conn.fetch(
                "SELECT quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname = current_schema() AND tablename <> ALL($1::text[])",
                list(KEPT_TABLES),
            )
        }
        references = [
            (row[0], row[1])
            for row in await conn.fetch(
                "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid <> confrelid"
            )
        ]
        ordered: list[str] = []
        while tables:
            unreferenced = {
                t for t in tables if not any(p == t and c in tables for c, p in references)
            }
            ordered += sorted(unreferenced or tables)
            tables -= unreferenced or tables
        if ordered:
            await conn.execute("; ".join(f"DELETE FROM {table}" for table in ordered))
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get("CHATKEEP_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)

    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=3)
        await conn.close()

    try:
        run_aside(probe)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL is not reachable at {where(url)} ({exc!r})"
        if os.environ.get("CHATKEEP_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}, and CHATKEEP_REQUIRE_POSTGRES=1", pytrace=False)
        pytest.skip(f"{reason}; set CHATKEEP_TEST_POSTGRES_URL to test that engine")
    return url


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    url = create_database(postgres_admin_url)
    try:
        yield url
    finally:
        drop_database(postgres_admin_url, url)


@pytest.fixture(scope="session")
def shared_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """One database for the whole session; `empty_tables` cleans it between tests."""
    url = create_database(postgres_admin_url, prefix="chatkeep_api")
    try:
        yield url
    finally:
        drop_database(postgres_admin_url, url)


@pytest.fixture(scope="session")
def scratch_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A database for the session's `blank_postgres_url` tests, blanked before each."""
    url = create_database(postgres_admin_url, prefix="chatkeep_scratch")
    try:
        yield url
    finally:
        drop_database(postgres_admin_url, url)


@pytest.fixture
def blank_postgres_url(scratch_postgres_url: str) -> str:
    """A blank database (no tables at all) for one test: what a new database looks like,
    at a fraction of the cost of creating one."""
    statement = "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
    run_aside(lambda: admin_execute(scratch_postgres_url, statement))
    return scratch_postgres_url
