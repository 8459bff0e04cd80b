"""Throwaway PostgreSQL databases for the runs that use the PostgreSQL store.

Each run makes its own database on the server behind the admin URL and drops it after;
the backend processes serving a database can be found (to pin them and read their CPU).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL)


def database_url(admin: str, name: str) -> str:
    """The admin URL with its database replaced by `name`."""
    parts = urlsplit(admin)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _execute(admin: str, sql: str) -> None:
    conn = await asyncpg.connect(admin, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch_pids(admin: str, name: str) -> list[int]:
    conn = await asyncpg.connect(admin, timeout=5)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


def reachable(admin: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        asyncio.run(_execute(admin, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def create_database(admin: str, prefix: str = "chatkeep_bench") -> str:
    """Make a fresh database; its name."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    asyncio.run(_execute(admin, f'CREATE DATABASE "{name}"'))
    return name


def drop_database(admin: str, name: str) -> None:
    asyncio.run(_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def backend_pids(admin: str, name: str) -> list[int]:
    """The server processes connected to database `name` now."""
    return asyncio.run(_fetch_pids(admin, name))
