"""What counts as PostgreSQL being unavailable (a 503 and a retry later) rather than a bad
statement, and which faults make every pooled connection suspect."""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]

from chatkeep.errors import StoreUnavailableError

Connection = Any  # asyncpg ships no type information

# Errors meaning "the database cannot answer now", as opposed to a bad statement:
# connection failures (class 08), shutdown or restart in progress (57), out of
# connections, memory or disk (53), a standby after failover, socket errors and timeouts.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    # What asyncpg raises on a pooled connection whose server process said goodbye
    # (terminated, restarted) while the socket's end is not yet seen.
    asyncpg.exceptions.InternalClientError,
)
# Errors after which the pool's other connections are suspect too (the server restarted):
# they are all replaced on their next acquire, and a read gets one more try.
STALE_CONNECTION: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InternalClientError,
    ConnectionResetError,
)


class ConnectionLost(ConnectionResetError):
    """The connection closed under a call: asyncpg then reports the next use of it (often a
    transaction's end) as an `InterfaceError`, which is not otherwise a connection error."""


def connection_lost(conn: Connection) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # the pool has already taken the dead connection back
        return True


def unavailable(exc: BaseException) -> StoreUnavailableError:
    # The exception's text can name hosts; the cause stays chained for the logs.
    kind = "did not answer in time" if isinstance(exc, TimeoutError) else "is unavailable"
    return StoreUnavailableError(f"The PostgreSQL database {kind}; try again shortly.")
