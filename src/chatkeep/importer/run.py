"""One import: the source's completions, page by page, into a project of the store.

Resumable and idempotent: after each page is stored, the source's last id on it is saved
as the import's checkpoint (`store.import_checkpoint`, by source URL and project), and the
next run asks the source for what comes after it. A completion already here (by its id or
original id: a run stopped mid-page, or an overlapping one) is skipped before its messages
are fetched, and the store's unique keys are the last guard, so nothing is stored twice.
The source's rate limits and passing faults are waited out (`export.retry`); a fault that
lasts ends the run with its message, the checkpoint at the last whole page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from chatkeep.export.remote import RemoteError, RemoteSource
from chatkeep.export.source import PAGE_SIZE
from chatkeep.importer.convert import Unimportable, new_completion
from chatkeep.lifecycle.policy import ProjectPolicy
from chatkeep.store.base import NewCompletion
from chatkeep.store.factory import MigratableStore
from chatkeep.store.schema import CompletionExistsError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ImportOptions:
    project: str
    metadata: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    since: int | None = None  # Unix seconds: only completions created then or later


@dataclass(slots=True)
class ImportCount:
    seen: int = 0
    imported: int = 0
    present: int = 0  # already in the store
    older: int = 0  # created before --since
    refused: int = 0  # not importable as they are (the log says why)
    gone: int = 0  # deleted at the source between its list page and its messages


Progress = Callable[[ImportCount], None]


class Importer:
    def __init__(
        self,
        store: MigratableStore,
        source: RemoteSource,
        options: ImportOptions,
        policy: ProjectPolicy,
    ) -> None:
        self._store = store
        self._source = source
        self._options = options
        self._policy = policy
        self.count = ImportCount()

    async def run(self, progress: Progress | None = None) -> ImportCount:
        store, project = self._store, self._options.project
        key = self._source.base
        after = await store.import_checkpoint(key, project)
        while True:
            page = await self._source.get_json("/chat/completions", self._params(after))
            if page is None:
                raise RemoteError(f"{key}/chat/completions answered 404.")
            items: list[dict[str, Any]] = page.get("data") or []
            wanted = [item for item in items if await self._wanted(item)]
            found = await asyncio.gather(*(self._source.with_messages(i) for i in wanted))
            for item, conversation in zip(wanted, found, strict=True):
                if conversation is None:
                    self.count.gone += 1
                else:
                    await self._store_one(item, conversation.messages)
            if items:
                after = items[-1]["id"]
                await store.save_import_checkpoint(key, project, str(after))
            if progress is not None:
                progress(self.count)
            if not page.get("has_more") or not items:
                return self.count

    def _params(self, after: str | None) -> list[tuple[str, str]]:
        params = [("limit", str(PAGE_SIZE)), ("order", "asc")]
        if self._options.model is not None:
            params.append(("model", self._options.model))
        if self._options.since is not None:  # chatkeep's; other sources ignore it
            params.append(("created_after", str(self._options.since - 1)))
        if after is not None:
            params.append(("after", after))
        return params

    async def _wanted(self, item: dict[str, Any]) -> bool:
        """Whether to fetch this item's messages and store it."""
        self.count.seen += 1
        since, created = self._options.since, item.get("created")
        if since is not None and isinstance(created, int) and created < since:
            self.count.older += 1
            return False
        original, project = item.get("id"), self._options.project
        if isinstance(original, str) and (
            await self._store.alias_of(project, original) is not None
            or await self._store.get(project, original) is not None
        ):
            self.count.present += 1
            return False
        return True

    async def _store_one(self, item: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        options = self._options
        try:
            completion = new_completion(options.project, item, messages, options.metadata)
        except Unimportable as exc:
            self.count.refused += 1
            logger.warning("Not imported: %s", exc)
            return
        try:
            await self._store.insert(await self._as_policy_says(completion))
        except CompletionExistsError:
            self.count.present += 1
        else:
            self.count.imported += 1

    async def _as_policy_says(self, completion: NewCompletion) -> NewCompletion:
        """Kept with or without content, and redacted, as the project's policy says."""
        if not self._policy.store_content:
            return replace(completion, keep_content=False)
        redactor = self._policy.redactor
        if redactor is None:
            return completion

        def redact() -> NewCompletion:
            return replace(
                completion,
                completion=redactor.completion(completion.completion),
                messages=redactor.messages(completion.messages),
            )

        return await asyncio.to_thread(redact)
