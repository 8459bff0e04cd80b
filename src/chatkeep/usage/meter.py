"""The usage meter: every answered completion adds to in-memory counters, which a background
task adds to the store's `usage_minutes` every `flush_seconds`, and once more at shutdown.

On the hot path, `record` is one dict lookup and four integer additions (bench/usage_meter.py
measures it): no I/O, no lock, no allocation once the minute's counter exists. Each worker
process has its own meter and adds its own counts; the store's upsert adds them up, so
several workers and several servers on one database never overwrite one another. What a
process has counted and not yet written is lost if it is killed (`kill -9`, power loss): at
most the last `flush_seconds` of that process's usage. A flush the database refuses is kept
and tried again at the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from chatkeep.protocol.base import keepable
from chatkeep.store.usage import DAY_SECONDS, NO_KEY, UsageCount, UsageStore

logger = logging.getLogger(__name__)

# How often old usage rows are looked for, when they have a retention.
PURGE_EVERY_SECONDS = 3600.0
_Key = tuple[str, int, str, str]  # project, minute, model, api key id
# More tokens than this in one answer is a broken upstream: counted as 0, so that the sums
# stay far inside the columns' 64 bits.
MAX_TOKENS = 2**40


def _count(value: Any) -> int:
    """A token count as reported, or 0 for anything that is not a plausible count."""
    return value if type(value) is int and 0 <= value < MAX_TOKENS else 0


def _storable(model: Any) -> str:
    """The model name as a column can hold it: an upstream's odd `model` (not a string, a
    NUL, a lone surrogate) must not make every later flush fail."""
    text = model if type(model) is str else str(model)
    if keepable(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


class UsageMeter:
    """Counts completions per (project, minute, model, API key) and writes them to `store`.

    `retention_days`: rows older than this are deleted (0 keeps them forever). `clock`:
    Unix seconds, for tests.
    """

    def __init__(
        self,
        store: UsageStore,
        *,
        flush_seconds: float = 10.0,
        retention_days: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._flush_seconds = flush_seconds
        self._retention_days = retention_days
        self._clock = clock
        self._counts: dict[_Key, list[int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._flushing: asyncio.Lock | None = None

    def record(
        self,
        project: str,
        api_key_id: str | None,
        model: str,
        created: int,
        usage: Any,
    ) -> None:
        """Count one answered completion, made at `created` (Unix seconds), with its usage
        object as the model server reported it (None or malformed counts as no tokens)."""
        if type(model) is not str or not keepable(model):
            model = _storable(model)
        key = (project, created - created % 60, model, api_key_id or NO_KEY)
        input_tokens: Any = 0
        output_tokens: Any = 0
        cached = 0
        if type(usage) is dict:  # the checks are inlined: this runs on every create
            input_tokens = usage.get("prompt_tokens")
            if type(input_tokens) is not int or not 0 <= input_tokens < MAX_TOKENS:
                input_tokens = 0
            output_tokens = usage.get("completion_tokens")
            if type(output_tokens) is not int or not 0 <= output_tokens < MAX_TOKENS:
                output_tokens = 0
            details = usage.get("prompt_tokens_details")
            if type(details) is dict:
                cached = _count(details.get("cached_tokens"))
        counts = self._counts.get(key)
        if counts is None:
            self._counts[key] = [1, input_tokens, cached, output_tokens]
        else:
            counts[0] += 1
            counts[1] += input_tokens
            counts[2] += cached
            counts[3] += output_tokens

    @property
    def pending(self) -> int:
        """How many (project, minute, model, key) counters wait for the next flush."""
        return len(self._counts)

    async def flush(self) -> None:
        """Add what was counted to the store, in one transaction; kept for later on failure.

        Flushes never overlap: a route that reads usage flushes first, beside the task."""
        if self._flushing is None:
            self._flushing = asyncio.Lock()
        async with self._flushing:
            if not self._counts:
                return
            pending, self._counts = self._counts, {}
            rows = [UsageCount(*key, *counts) for key, counts in pending.items()]
            try:
                await self._store.add_usage(rows)
            except Exception as exc:  # the meter must outlive a database outage
                self._merge(pending)
                logger.warning(
                    "could not record usage (%d counters kept for the next try): %s",
                    len(pending),
                    exc,
                )

    def _merge(self, pending: dict[_Key, list[int]]) -> None:
        for key, counts in pending.items():
            mine = self._counts.get(key)
            if mine is None:
                self._counts[key] = counts
            else:
                for i, value in enumerate(counts):
                    mine[i] += value

    async def purge(self) -> int:
        """Delete the rows older than the retention (none when it is 0); how many went."""
        if self._retention_days <= 0:
            return 0
        before = int(self._clock()) - self._retention_days * DAY_SECONDS
        return await self._store.purge_usage(before - before % 60)

    async def start(self) -> None:
        """Start the background flushes (and purges), once the store is open."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """Stop the background task and write what is still counted (before the store
        closes: a graceful shutdown loses nothing)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def _run(self) -> None:
        purged_at = float("-inf")
        while True:
            if self._retention_days > 0 and time.monotonic() - purged_at >= PURGE_EVERY_SECONDS:
                purged_at = time.monotonic()
                try:
                    removed = await self.purge()
                except Exception as exc:
                    logger.warning("could not purge old usage rows: %s", exc)
                else:
                    if removed:
                        logger.info("usage retention: %d minute rows removed", removed)
            await asyncio.sleep(self._flush_seconds)
            await self.flush()
