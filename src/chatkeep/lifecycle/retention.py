"""Retention: turning each project's policy into what the store removes, on demand
(`chatkeep purge`) and on a schedule inside `chatkeep serve`.

With several servers on one PostgreSQL, each runs the schedule, and the store's purge
lock (an advisory lock) lets one purge at a time; the others skip that round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from chatkeep.errors import ChatkeepError
from chatkeep.lifecycle.book import PolicyBook
from chatkeep.store.base import CompletionStore, Cutoffs, PurgeCount
from chatkeep.store.responses import ResponseStore

if TYPE_CHECKING:
    from chatkeep.observability.metrics import Metrics

logger = logging.getLogger(__name__)


class Retention:
    """Applies the policies in `book` to `store`. `clock`: Unix seconds, for tests;
    `metrics` counts the scheduled rounds and what they purged."""

    def __init__(
        self,
        store: CompletionStore,
        book: PolicyBook,
        *,
        clock: Callable[[], float] = time.time,
        responses: ResponseStore | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._responses = responses
        self._book = book
        self._clock = clock
        self._metrics = metrics

    async def purge(
        self, *, project: str | None = None, dry_run: bool = False
    ) -> dict[str, PurgeCount] | None:
        """Purge (or count, in a dry run) what every project's policy no longer keeps.
        None: another server holds the purge lock and is purging now."""
        policy_of = await self._book.snapshot()
        now_ms = int(self._clock() * 1000)

        def cutoffs(name: str) -> Cutoffs:
            return policy_of(name).cutoffs(now_ms)

        if dry_run:
            found = await self._store.purge(cutoffs, project=project, dry_run=True)
            return await self._with_responses(found, cutoffs, project, dry_run=True)
        async with self._store.purge_lock() as acquired:
            if not acquired:
                return None
            found = await self._store.purge(cutoffs, project=project)
            return await self._with_responses(found, cutoffs, project, dry_run=False)

    async def _with_responses(
        self,
        found: dict[str, PurgeCount],
        cutoffs: Callable[[str], Cutoffs],
        project: str | None,
        *,
        dry_run: bool,
    ) -> dict[str, PurgeCount]:
        """Stored responses (docs/responses.md) follow the same policy: their counts are
        added to their project's."""
        if self._responses is None:
            return found
        more = await self._responses.purge_responses(cutoffs, project=project, dry_run=dry_run)
        for name, count in more.items():
            total = found.setdefault(name, PurgeCount())
            total.content += count.content
            total.records += count.records
        return found

    async def run_every(self, seconds: float) -> None:
        """Purge every `seconds`, the first time at once, until cancelled; a round that
        fails is logged and the next one tries again."""
        while True:
            started = time.monotonic()
            try:
                found = await self.purge()
            except ChatkeepError as exc:
                logger.warning("retention purge failed, next try in %gs: %s", seconds, exc)
                if self._metrics is not None:
                    self._metrics.purge_failed()
            else:
                _log_round(found, time.monotonic() - started)
                if self._metrics is not None:
                    _count_round(self._metrics, found)
            await asyncio.sleep(seconds)


def _log_round(found: dict[str, PurgeCount] | None, seconds: float) -> None:
    if found is None:
        logger.info("retention purge skipped: another server is purging")
        return
    content = sum(count.content for count in found.values())
    records = sum(count.records for count in found.values())
    if content or records:
        logger.info(
            "retention purge: %d completions lost their content, %d records removed, in %.1fs",
            content,
            records,
            seconds,
        )


def _count_round(metrics: Metrics, found: dict[str, PurgeCount] | None) -> None:
    if found is None:
        metrics.purge_skipped()
        return
    content = sum(count.content for count in found.values())
    records = sum(count.records for count in found.values())
    metrics.purge_done(content, records)


@contextlib.asynccontextmanager
async def running_every(retention: Retention, seconds: float) -> AsyncIterator[None]:
    """Run `retention.run_every(seconds)` in the background while inside (0: never)."""
    if seconds <= 0:
        yield
        return
    task = asyncio.get_running_loop().create_task(retention.run_every(seconds))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
