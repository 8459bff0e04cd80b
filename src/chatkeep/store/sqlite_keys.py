"""API keys in the SQLite file of the completions, on that store's own connections.

Reads run on the store's reader threads; writes (new keys, revocations, last-used times)
go through its single writer like every other write, so the file keeps one writer.
"""

from __future__ import annotations

from collections.abc import Mapping

from chatkeep.store.keys import (
    FIND_KEY_SQL,
    HAS_KEYS_SQL,
    HASH_COLUMN,
    INSERT_KEY_SQL,
    LIST_KEYS_SQL,
    RECORD_USE_SQL,
    REVOKE_KEY_SQL,
    ApiKey,
    KeyExistsError,
    NewApiKey,
    StoredKey,
    key_from_row,
    new_key_row,
)
from chatkeep.store.schema import for_sqlite
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3

_INSERT, _FIND = for_sqlite(INSERT_KEY_SQL), for_sqlite(FIND_KEY_SQL)
_LIST, _REVOKE = for_sqlite(LIST_KEYS_SQL), for_sqlite(REVOKE_KEY_SQL)
_RECORD_USE = for_sqlite(RECORD_USE_SQL)


class SQLiteKeyStore:
    """A `KeyStore` beside a `SQLiteStore`; open and closed with it."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def insert_key(self, key: NewApiKey) -> None:
        row = new_key_row(key)

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(_INSERT, row)
            except sqlite3.IntegrityError:
                raise KeyExistsError(key.id) from None

        await self._store.run_write(op)

    async def find_key(self, key_hash: str) -> StoredKey | None:
        row = await self._store.run_read(lambda conn: conn.execute(_FIND, (key_hash,)).fetchone())
        return None if row is None else StoredKey(key_from_row(row), row[HASH_COLUMN])

    async def list_keys(self) -> list[ApiKey]:
        rows = await self._store.run_read(lambda conn: conn.execute(_LIST).fetchall())
        return [key_from_row(row) for row in rows]

    async def revoke_key(self, key_id: str, revoked: int) -> ApiKey | None:
        def op(conn: sqlite3.Connection) -> ApiKey | None:
            row = conn.execute(_REVOKE, (key_id, revoked)).fetchone()
            return None if row is None else key_from_row(row)

        return await self._store.run_write(op)

    async def record_use(self, last_used: Mapping[str, int]) -> None:
        rows = list(last_used.items())

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(_RECORD_USE, rows)

        if rows:
            await self._store.run_write(op)

    async def has_keys(self) -> bool:
        row = await self._store.run_read(lambda conn: conn.execute(HAS_KEYS_SQL).fetchone())
        return bool(row[0])
