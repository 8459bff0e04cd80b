"""Where stored completions are read from, for export and `chatkeep logs`: one project of a
local store (`StoreSource`, through the service's read paths), or a running server
(`remote.RemoteSource`, through the public API). Both give the same `Conversation`s: the
stored object as `GET /v1/chat/completions/{id}` returns it, and its input messages as
`GET .../{id}/messages` returns them, so an export reads the same from either.

A walk holds one page of completions at a time: memory stays bounded however many it reads.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol

from chatkeep.errors import NotFoundError
from chatkeep.protocol.queries import ListQuery, MessagesQuery
from chatkeep.service.reads import StoredCompletions

# Completions read per page of a walk: big enough that the per-page cost vanishes, small
# enough that a page (and its messages) stays a few MiB.
PAGE_SIZE = 100
# Messages are listed in pages of at most this many (the API's own maximum).
MESSAGES_PAGE = 100


@dataclass(frozen=True, slots=True)
class Conversation:
    """A stored completion and its input messages (`ChatCompletionStoreMessage` items)."""

    completion: dict[str, Any]
    messages: list[dict[str, Any]]

    @property
    def id(self) -> str:
        completion_id: str = self.completion["id"]
        return completion_id


class CompletionSource(Protocol):
    """Stored completions of one project, read page by page."""

    def walk(self, query: ListQuery) -> AsyncGenerator[Conversation, None]:
        """Every completion the list filters of `query` select, in its order, each with its
        messages, read `query.limit` a page; one that disappears during the walk (deleted,
        purged) is passed by."""
        ...

    async def conversation(self, completion_id: str) -> Conversation | None:
        """One completion with its messages, or None when there is none by that id."""
        ...


class StoreSource:
    """One project of an opened `CompletionStore`, read through `StoredCompletions`.

    Completions without content (kept with `store_content = false`, or past their content
    retention) are never listed by the store, so a walk never sees them.
    """

    def __init__(self, stored: StoredCompletions, project: str) -> None:
        self._stored = stored
        self._project = project

    async def walk(self, query: ListQuery) -> AsyncGenerator[Conversation, None]:
        while True:
            page = await self._stored.list_chat_completions(self._project, query)
            found = await asyncio.gather(*(self._with_messages(c) for c in page["data"]))
            for conversation in found:
                if conversation is not None:
                    yield conversation
            if not page["has_more"]:
                return
            query = dataclasses.replace(query, after=page["last_id"])

    async def conversation(self, completion_id: str) -> Conversation | None:
        try:
            stored = await self._stored.retrieve_chat_completion(self._project, completion_id)
        except NotFoundError:
            return None
        return await self._with_messages(stored)

    async def _with_messages(self, completion: dict[str, Any]) -> Conversation | None:
        # All of a completion's messages in one read: the store keeps them in one row.
        everything = MessagesQuery(limit=2**31)
        try:
            page = await self._stored.list_chat_completion_messages(
                self._project, completion["id"], everything
            )
        except NotFoundError:  # deleted or purged since the page was read
            return None
        return Conversation(completion, list(page["data"]))
