"""Group commit of inserts on PostgreSQL: writer tasks that commit queued inserts together.

Inserts that arrive together are committed together: a few writer tasks each take what has
queued up and store it in one transaction (one WAL flush for the lot). Each caller gets its
own outcome: a batch that fails on one item is redone with a savepoint per item.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from chatkeep.store.postgres_faults import (
    UNAVAILABLE,
    Connection,
    connection_lost,
    unavailable,
)
from chatkeep.store.postgres_partitions import missing_partition
from chatkeep.store.schema import CompletionExistsError

INSERT = """
WITH c AS (
    INSERT INTO completions
        (project, id, model, created, metadata, usage, finish_reasons, latency_ms)
    VALUES ($1, $2, $3, $4, $5::json, $6::json, $7::json, $8)
    RETURNING project, id
), cc AS (
    INSERT INTO completion_content (project, id, completion, messages, search)
    SELECT c.project, c.id, $9::json, $10::json,
        jsonb_to_tsvector('simple', $14::jsonb, '["string"]')
    FROM c WHERE $9::text IS NOT NULL
    RETURNING project, id
), a AS (
    INSERT INTO completion_aliases (project, alias, id)
    SELECT c.project, $13::text, c.id FROM c WHERE $13::text IS NOT NULL
)
INSERT INTO completion_metadata (project, completion_id, key, value)
SELECT cc.project, cc.id, m.key, m.value FROM cc, unnest($11::text[], $12::text[]) AS m(key, value)
"""


@dataclass(slots=True)
class _PendingInsert:
    completion_id: str
    args: tuple[Any, ...]
    future: asyncio.Future[None]


Outcome = BaseException | None
Caller = Callable[[Callable[[Connection], Awaitable[list[Outcome]]]], Awaitable[list[Outcome]]]
# Makes the partitions that rows of these completion ids need (`postgres_partitions`).
MakeRoom = Callable[[Connection, list[str]], Awaitable[object]]
# Told of each commit: its seconds and how many inserts it committed (the metrics).
CommitObserver = Callable[[float, int], None]


class InsertBatcher:
    """Writer tasks that commit queued inserts in batches, each caller getting its own
    outcome: a batch that fails on one item is redone with a savepoint per item. A batch
    with a row for a day that has no partition yet gets it made (`make_room`), then is
    tried once more."""

    def __init__(
        self,
        call: Caller,
        batch_size: int,
        writers: int,
        make_room: MakeRoom,
        observe: CommitObserver | None = None,
    ) -> None:
        self._call = call
        self._observe = observe
        self._make_room = make_room
        self._batch_size = batch_size
        self._queue: asyncio.Queue[_PendingInsert] = asyncio.Queue()
        self.transactions = 0
        self._tasks = [asyncio.create_task(self._write_loop()) for _ in range(writers)]

    async def submit(self, completion_id: str, args: tuple[Any, ...]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_PendingInsert(completion_id, args, future))
        await future

    async def close(self) -> None:
        """Commit everything queued, then stop the writers."""
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            began = time.perf_counter()
            try:
                outcomes = await self._commit(batch)
            except Exception as exc:  # a writer never dies with callers waiting
                outcomes = [exc] * len(batch)
            if self._observe is not None:
                self._observe(time.perf_counter() - began, len(batch))
            for pending, outcome in zip(batch, outcomes, strict=True):
                if not pending.future.done():  # a cancelled caller's row is stored anyway
                    if outcome is None:
                        pending.future.set_result(None)
                    else:
                        pending.future.set_exception(outcome)
                self._queue.task_done()

    async def _commit(self, batch: list[_PendingInsert]) -> list[Outcome]:
        async def together(conn: Connection, *, again: bool = True) -> list[Outcome]:
            try:
                async with conn.transaction():
                    await conn.executemany(INSERT, [pending.args for pending in batch])
            except UNAVAILABLE:
                raise
            except Exception as exc:
                if connection_lost(conn):
                    raise
                if again and missing_partition(exc):
                    await self._make_room(conn, [pending.completion_id for pending in batch])
                    return await together(conn, again=False)
                outcomes = await _one_by_one(conn, batch)
            else:
                outcomes = [None] * len(batch)
            self.transactions += 1
            return outcomes

        try:
            return await self._call(together)
        except UNAVAILABLE as exc:
            return [unavailable(exc) for _ in batch]


async def _one_by_one(conn: Connection, batch: list[_PendingInsert]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    async with conn.transaction():
        for pending in batch:
            try:
                async with conn.transaction():  # a savepoint
                    await conn.execute(INSERT, *pending.args)
                outcomes.append(None)
            except asyncpg.UniqueViolationError:
                outcomes.append(CompletionExistsError(pending.completion_id))
            except UNAVAILABLE:
                raise
            except Exception as exc:
                outcomes.append(exc)
    return outcomes
