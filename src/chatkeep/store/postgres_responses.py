"""Stored responses in the PostgreSQL database of the completions, on that store's pool.

The table is partitioned by week on the id (`postgres_response_weeks`): an insert that
finds no partition for its week makes it and tries again; retention drops the weeks every
project's record window has passed, and empties or deletes the rest in bounded batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from chatkeep.protocol.base import keepable
from chatkeep.store import postgres_response_weeks as weeks
from chatkeep.store.base import Cutoffs, PurgeCount
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.postgres_faults import Connection
from chatkeep.store.postgres_partitions import missing_partition
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
    response_cutoffs,
    turns,
)
from chatkeep.store.schema import CompletionExistsError, load_json
from chatkeep.store.sqlite_responses import insert_row


class PostgresResponseStore:
    """A `ResponseStore` beside a `PostgresStore`; open and closed with it."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def insert_response(self, response: NewResponse) -> None:
        row = insert_row(response)

        async def insert(conn: Connection) -> None:
            try:
                await conn.execute(INSERT_SQL, *row)
            except asyncpg.CheckViolationError as exc:
                if not missing_partition(exc):
                    raise
                await weeks.ensure(conn, [weeks.week_of(response.id)])
                await conn.execute(INSERT_SQL, *row)

        try:
            await self._store.run(insert)
        except asyncpg.UniqueViolationError:
            raise CompletionExistsError(response.id) from None

    async def get_response(self, project: str, response_id: str) -> dict[str, Any] | None:
        text = await self._one(GET_SQL, project, response_id)
        return None if text is None else load_json(text)

    async def input_items(self, project: str, response_id: str) -> list[dict[str, Any]] | None:
        text = await self._one(ITEMS_SQL, project, response_id)
        return None if text is None else load_json(text)

    async def _one(self, sql: str, project: str, response_id: str) -> Any:
        if not (keepable(project) and keepable(response_id)):
            return None
        return await self._store.run(
            lambda conn: conn.fetchval(sql, project, response_id), read=True
        )

    async def delete_response(self, project: str, response_id: str) -> bool:
        if not (keepable(project) and keepable(response_id)):
            return False
        found = await self._store.run(lambda conn: conn.fetchval(DELETE_SQL, project, response_id))
        return found is not None

    async def chain(self, project: str, response_id: str) -> list[Turn]:
        rows: list[Any] = []
        if keepable(project) and keepable(response_id):
            rows = await self._store.run(
                lambda conn: conn.fetch(CHAIN_SQL, project, response_id), read=True
            )
        return turns(rows, response_id, load_json)

    async def purge_responses(
        self, cutoffs: Callable[[str], Cutoffs], *, project: str | None, dry_run: bool
    ) -> dict[str, PurgeCount]:
        run = self._store.run
        if project is not None:
            names = [project]
        else:
            names = sorted(row[0] for row in await run(lambda c: c.fetch(PROJECTS_SQL), read=True))

        async def count(sql: str, name: str, cutoff: str) -> int:
            found: int = await run(lambda c: c.fetchval(sql, name, cutoff), read=True)
            return found

        async def batch(sql: str, name: str, cutoff: str) -> int:
            status: str = await run(lambda c: _execute(c, sql, name, cutoff))
            return int(status.rsplit(" ", 1)[-1])

        if dry_run:
            return await purge_projects(names, cutoffs, dry_run=True, count=count, batch=batch)
        await run(weeks.prepare)
        found: dict[str, PurgeCount] = {}
        records = [response_cutoffs(cutoffs(name))[1] for name in names]
        passed = None if not names or None in records else min(r for r in records if r)
        if project is None and passed is not None:  # a drop is every project's purge
            await run(lambda c: weeks.drop_passed(c, passed, found))
        more = await purge_projects(names, cutoffs, dry_run=False, count=count, batch=batch)
        for name, tally in more.items():
            total = found.setdefault(name, PurgeCount())
            total.records += tally.records
            total.content += tally.content
        below = [c for name in names for c in response_cutoffs(cutoffs(name)) if c is not None]
        if any(t.records or t.content for t in more.values()) and below:
            await run(lambda c: weeks.vacuum_below(c, max(below)))
        return found


async def _execute(conn: Connection, sql: str, project: str, cutoff: str) -> str:
    status: str = await conn.execute(sql, project, cutoff)
    return status
