"""Stored responses in the SQLite file of the completions, on that store's connections.

Reads run on the store's reader threads; writes go through its single writer, and a
delete or a purge asks it to checkpoint the WAL, as a completion's delete does, so that
no deleted text stays in either file (`secure_delete` zeroes the freed pages).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chatkeep.protocol.base import keepable
from chatkeep.store.base import Cutoffs, PurgeCount
from chatkeep.store.responses import (
    CHAIN_SQL,
    DELETE_SQL,
    GET_SQL,
    INSERT_SQL,
    ITEMS_SQL,
    PROJECTS_SQL,
    NewResponse,
    Turn,
    purge_projects,
    turns,
)
from chatkeep.store.schema import CompletionExistsError, dump_json, for_sqlite, load_json
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3
from chatkeep.store.text import check_storable

_INSERT, _GET, _ITEMS = for_sqlite(INSERT_SQL), for_sqlite(GET_SQL), for_sqlite(ITEMS_SQL)
_DELETE, _CHAIN = for_sqlite(DELETE_SQL), for_sqlite(CHAIN_SQL)


def insert_row(r: NewResponse) -> tuple[Any, ...]:
    """The parameters of `INSERT_SQL` (the content NULL when it is not to be kept)."""
    check_storable("model", (r.model,))
    check_storable("metadata", (*r.metadata, *r.metadata.values()))
    check_storable("previous_response_id", (r.previous_response_id or "",))
    content: tuple[str | None, str | None] = (None, None)
    if r.keep_content:
        content = (dump_json(r.response, "input"), dump_json(r.input_items, "input"))
    usage = None if r.usage is None else dump_json(r.usage, "usage")
    return (r.project, r.id, r.model, r.created, r.previous_response_id,
            dump_json(r.metadata, "metadata"), usage, *content)  # fmt: skip


class SQLiteResponseStore:
    """A `ResponseStore` beside a `SQLiteStore`; open and closed with it."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def insert_response(self, response: NewResponse) -> None:
        row = insert_row(response)

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(_INSERT, row)
            except sqlite3.IntegrityError:
                raise CompletionExistsError(response.id) from None

        await self._store.run_write(op)

    async def get_response(self, project: str, response_id: str) -> dict[str, Any] | None:
        text = await self._one(_GET, project, response_id)
        return None if text is None else load_json(text)

    async def input_items(self, project: str, response_id: str) -> list[dict[str, Any]] | None:
        text = await self._one(_ITEMS, project, response_id)
        return None if text is None else load_json(text)

    async def _one(self, sql: str, project: str, response_id: str) -> Any:
        if not (keepable(project) and keepable(response_id)):
            return None
        row = await self._store.run_read(
            lambda conn: conn.execute(sql, (project, response_id)).fetchone()
        )
        return None if row is None else row[0]

    async def delete_response(self, project: str, response_id: str) -> bool:
        if not (keepable(project) and keepable(response_id)):
            return False

        def op(conn: sqlite3.Connection) -> bool:
            return bool(conn.execute(_DELETE, (project, response_id)).fetchall())

        deleted: bool = await self._store.run_write(op)
        if deleted:
            await self._store.run_write(self._store.request_checkpoint)
        return deleted

    async def chain(self, project: str, response_id: str) -> list[Turn]:
        rows: list[Any] = []
        if keepable(project) and keepable(response_id):
            rows = await self._store.run_read(
                lambda conn: conn.execute(_CHAIN, (project, response_id)).fetchall()
            )
        return turns(rows, response_id, load_json)

    async def purge_responses(
        self, cutoffs: Callable[[str], Cutoffs], *, project: str | None, dry_run: bool
    ) -> dict[str, PurgeCount]:
        store = self._store
        names = [project] if project is not None else await store.run_read(_projects)

        async def count(sql: str, name: str, cutoff: str) -> int:
            row = await store.run_read(
                lambda conn: conn.execute(for_sqlite(sql), (name, cutoff)).fetchone()
            )
            return int(row[0])

        async def batch(sql: str, name: str, cutoff: str) -> int:
            changed: int = await store.run_write(
                lambda conn: conn.execute(for_sqlite(sql), (name, cutoff)).rowcount
            )
            return changed

        found = await purge_projects(names, cutoffs, dry_run=dry_run, count=count, batch=batch)
        if not dry_run and any(c.records or c.content for c in found.values()):
            await store.run_write(store.request_checkpoint)
        return found


def _projects(conn: sqlite3.Connection) -> list[str]:
    return sorted(row[0] for row in conn.execute(PROJECTS_SQL))
