"""How the PostgreSQL store's connection pool is made: what each pooled connection keeps
between calls, and what it is spared."""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]

from chatkeep.store.postgres_faults import Connection

# Prepared statements each pooled connection keeps (asyncpg's LRU; its default is 100).
# Reads name a day's leaves (`postgres_weeks`), so each day a client reads has statements
# of its own: at 5M completions over 60 days, gets, lists and filtered lists used about
# 240 a connection, filtered lists alone 130, and with 100 kept each page prepared again
# what the last had pushed out (a fresh store's p99 104 ms against 54; bench/README.md).
# A kept statement costs its backend 44-75 KB, and asyncpg lets one go after 5 minutes
# unused (`max_cached_statement_lifetime`).
STATEMENT_CACHE_SIZE = 512


async def leave_session(conn: Connection) -> None:
    """What the pool does to a connection given back, besides asyncpg's own rollback of a
    transaction left open: nothing. asyncpg's default sends `SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` after every call, a round
    trip of its own; chatkeep leaves no session state to clear: settings are `SET LOCAL`,
    advisory locks are taken for a transaction, except the purge's, which `purge_lock`
    releases (or closes its connection), and nothing listens or holds a cursor. Through
    the server at 5M completions: 18-33 % more gets a second, 6-12 % more lists, 18-20 %
    more filtered lists (bench/README.md, "one sitting")."""


async def create_pool(
    dsn: str, *, min_size: int, max_size: int, connect_timeout: float, command_timeout: float
) -> Any:
    """An asyncpg pool of chatkeep's connections (errors as asyncpg raises them)."""
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        command_timeout=command_timeout,
        # Every statement here reads or writes a handful of rows by index; JIT compiling
        # one (PostgreSQL does above a plan cost, which a generic plan's estimate can
        # reach) took 9-37 ms for a 0.3 ms page.
        server_settings={"jit": "off"},
        statement_cache_size=STATEMENT_CACHE_SIZE,
        reset=leave_session,
    )
