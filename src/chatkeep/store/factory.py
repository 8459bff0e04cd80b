"""Choose and build the store that `settings.database_url` names, and its key store.

`open_store` only builds it; the caller (the app's lifespan) awaits `store.open()`, and
`chatkeep db upgrade` calls `upgrade()` on a store that `open()` would refuse.
"""

from __future__ import annotations

from typing import Protocol

from chatkeep.config import Settings
from chatkeep.store.base import CompletionStore
from chatkeep.store.keys import KeyStore
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.postgres_keys import PostgresKeyStore
from chatkeep.store.postgres_responses import PostgresResponseStore
from chatkeep.store.responses import ResponseStore
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_keys import SQLiteKeyStore
from chatkeep.store.sqlite_responses import SQLiteResponseStore

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")


class MigratableStore(CompletionStore, Protocol):
    """A `CompletionStore` that also reports and applies its schema migrations."""

    async def pending_migrations(self) -> list[str]:
        """Names of the migrations the database still lacks, in order."""
        ...

    async def upgrade(self, *, through: str | None = None) -> list[str]:
        """Apply the pending migrations (up to `through`); return the names applied."""
        ...


def sqlite_path(url: str) -> str:
    """The file path of a `sqlite:///relative.db` or `sqlite:////absolute.db` URL."""
    path = url[len(SQLITE_PREFIX) :]
    if not path or path.startswith(":memory:") or "?" in path:
        raise ValueError(
            "A SQLite database URL names a file: `sqlite:///relative/path.db` or "
            "`sqlite:////absolute/path.db` (in-memory databases and URL options are not "
            "supported)."
        )
    return path


def open_store(settings: Settings) -> MigratableStore:
    """Build (without connecting) the store for `settings.database_url`."""
    url = settings.database_url
    scheme = url.split(":", 1)[0] if ":" in url else ""
    if url.startswith(SQLITE_PREFIX):
        return SQLiteStore(
            sqlite_path(url),
            synchronous=settings.sqlite_synchronous,
            batch_size=settings.store_batch_size,
            read_threads=settings.store_read_threads,
        )
    if scheme in POSTGRES_SCHEMES and url.startswith(f"{scheme}://"):
        return PostgresStore(
            url,
            pool_min=settings.postgres_pool_min,
            pool_max=settings.postgres_pool_max,
            batch_size=settings.store_batch_size,
            command_timeout=settings.postgres_command_timeout,
        )
    # Only the scheme is echoed: the rest of a database URL may hold a password.
    if scheme == "sqlite":
        problem = "A 'sqlite' database URL needs three slashes before a relative path"
    else:
        problem = f"Unsupported database URL scheme {repr(scheme) if scheme else '(none)'}"
    raise ValueError(
        f"{problem}: use `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, "
        "or `postgresql://user@host/dbname`."
    )


def key_store_for(store: CompletionStore) -> KeyStore:
    """The API keys kept in `store`'s database, on `store`'s connections (open with it)."""
    if isinstance(store, SQLiteStore):
        return SQLiteKeyStore(store)
    if isinstance(store, PostgresStore):
        return PostgresKeyStore(store)
    raise TypeError(
        f"No key store for a {type(store).__name__}: pass `key_store=` or `authenticator=`."
    )


def response_store_for(store: CompletionStore) -> ResponseStore:
    """The stored responses kept in `store`'s database, on its connections (open with it)."""
    if isinstance(store, SQLiteStore):
        return SQLiteResponseStore(store)
    if isinstance(store, PostgresStore):
        return PostgresResponseStore(store)
    raise TypeError(f"No response store for a {type(store).__name__}: pass `responses=`.")
