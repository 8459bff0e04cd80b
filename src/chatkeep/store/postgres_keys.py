"""API keys in the PostgreSQL database of the completions, on that store's own pool."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg  # type: ignore[import-untyped]

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
from chatkeep.store.postgres import PostgresStore


class PostgresKeyStore:
    """A `KeyStore` beside a `PostgresStore`; open and closed with it."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def insert_key(self, key: NewApiKey) -> None:
        row = new_key_row(key)
        try:
            await self._store.run(lambda conn: conn.execute(INSERT_KEY_SQL, *row))
        except asyncpg.UniqueViolationError:
            raise KeyExistsError(key.id) from None

    async def find_key(self, key_hash: str) -> StoredKey | None:
        row = await self._store.run(lambda conn: conn.fetchrow(FIND_KEY_SQL, key_hash), read=True)
        return None if row is None else StoredKey(key_from_row(row), row[HASH_COLUMN])

    async def list_keys(self) -> list[ApiKey]:
        rows = await self._store.run(lambda conn: conn.fetch(LIST_KEYS_SQL), read=True)
        return [key_from_row(row) for row in rows]

    async def revoke_key(self, key_id: str, revoked: int) -> ApiKey | None:
        row = await self._store.run(lambda conn: conn.fetchrow(REVOKE_KEY_SQL, key_id, revoked))
        return None if row is None else key_from_row(row)

    async def record_use(self, last_used: Mapping[str, int]) -> None:
        rows = list(last_used.items())
        if not rows:
            return

        async def touch(conn: Any) -> None:
            async with conn.transaction():
                await conn.executemany(RECORD_USE_SQL, rows)

        await self._store.run(touch)

    async def has_keys(self) -> bool:
        found: bool = await self._store.run(lambda conn: conn.fetchval(HAS_KEYS_SQL), read=True)
        return found
