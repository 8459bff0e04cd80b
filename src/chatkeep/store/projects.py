"""Project settings (docs/lifecycle.md), kept in the database of the completions: one row
per project that set anything, holding only what was set, as a JSON map.

The SQL is written once in PostgreSQL's `$n` form; the SQLite side converts it. Reads and
writes run on the completion store's own connections (its writer thread, on SQLite).
"""

from __future__ import annotations

from typing import Any, Protocol

from chatkeep.store.base import CompletionStore
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.postgres_faults import Connection
from chatkeep.store.schema import dump_json, for_sqlite, load_json
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3

LIST_SQL = "SELECT name, settings FROM projects ORDER BY name"
UPSERT_SQL = (
    "INSERT INTO projects (name, settings, updated) VALUES ($1, $2, $3) "
    "ON CONFLICT (name) DO UPDATE SET settings = excluded.settings, updated = excluded.updated"
)
DELETE_SQL = "DELETE FROM projects WHERE name = $1"
# Projects that API keys name, with how many keys are active (admin keys name no project).
KEYED_SQL = (
    "SELECT project, count(*) FILTER (WHERE revoked IS NULL) FROM api_keys "
    "WHERE NOT admin GROUP BY project"
)


class ProjectSettingsStore(Protocol):
    async def all_settings(self) -> dict[str, dict[str, Any]]:
        """Every project's stored settings map, by name."""
        ...

    async def put_settings(self, name: str, settings: dict[str, Any], updated: int) -> None:
        """Replace a project's settings map (an empty map removes its row)."""
        ...

    async def keyed_projects(self) -> dict[str, int]:
        """Projects named by API keys, with their count of active keys."""
        ...


class SQLiteProjectSettings:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def all_settings(self) -> dict[str, dict[str, Any]]:
        rows = await self._store.run_read(lambda conn: conn.execute(LIST_SQL).fetchall())
        return {name: load_json(settings) for name, settings in rows}

    async def put_settings(self, name: str, settings: dict[str, Any], updated: int) -> None:
        encoded = dump_json(settings, "settings")

        def op(conn: sqlite3.Connection) -> None:
            if settings:
                conn.execute(for_sqlite(UPSERT_SQL), (name, encoded, updated))
            else:
                conn.execute(for_sqlite(DELETE_SQL), (name,))

        await self._store.run_write(op)

    async def keyed_projects(self) -> dict[str, int]:
        rows = await self._store.run_read(lambda conn: conn.execute(KEYED_SQL).fetchall())
        return {name: active for name, active in rows}


class PostgresProjectSettings:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def all_settings(self) -> dict[str, dict[str, Any]]:
        rows = await self._store.run(lambda conn: conn.fetch(LIST_SQL), read=True)
        return {row[0]: load_json(row[1]) for row in rows}

    async def put_settings(self, name: str, settings: dict[str, Any], updated: int) -> None:
        encoded = dump_json(settings, "settings")

        async def op(conn: Connection) -> None:
            if settings:
                await conn.execute(UPSERT_SQL, name, encoded, updated)
            else:
                await conn.execute(DELETE_SQL, name)

        await self._store.run(op)

    async def keyed_projects(self) -> dict[str, int]:
        rows = await self._store.run(lambda conn: conn.fetch(KEYED_SQL), read=True)
        return {row[0]: row[1] for row in rows}


def project_settings_for(store: CompletionStore) -> ProjectSettingsStore:
    """The project settings kept in `store`'s database, on its connections."""
    if isinstance(store, SQLiteStore):
        return SQLiteProjectSettings(store)
    if isinstance(store, PostgresStore):
        return PostgresProjectSettings(store)
    raise TypeError(f"No project settings for a {type(store).__name__}.")
