"""Reading and changing stored completions: retrieve, list, update, delete, messages.

Every operation is scoped to the caller's project; a completion of another project, an
unknown id, one that was never stored and one that was deleted all answer the same 404.
"""

from __future__ import annotations

from typing import Any

from chatkeep.errors import not_found
from chatkeep.protocol.queries import ListQuery, MessagesQuery
from chatkeep.protocol.responses import ChatCompletionDeleted, CursorPage
from chatkeep.service.stored import store_message
from chatkeep.store.base import CompletionStore


class StoredCompletions:
    """The read, update and delete side of the stored-completions API."""

    def __init__(self, store: CompletionStore) -> None:
        self._store = store

    async def retrieve_chat_completion(self, project: str, completion_id: str) -> dict[str, Any]:
        stored = await self._store.get(project, completion_id)
        if stored is None:
            raise not_found(completion_id)
        return stored

    async def list_chat_completions(self, project: str, query: ListQuery) -> CursorPage:
        rows = await self._store.list(project, query)
        return _page(rows[: query.limit], has_more=len(rows) > query.limit)

    async def update_chat_completion(
        self, project: str, completion_id: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        stored = await self._store.update_metadata(project, completion_id, metadata)
        if stored is None:
            raise not_found(completion_id)
        return stored

    async def delete_chat_completion(
        self, project: str, completion_id: str
    ) -> ChatCompletionDeleted:
        if not await self._store.delete(project, completion_id):
            raise not_found(completion_id)
        return {"id": completion_id, "object": "chat.completion.deleted", "deleted": True}

    async def list_chat_completion_messages(
        self, project: str, completion_id: str, query: MessagesQuery
    ) -> CursorPage:
        messages = await self._store.messages(project, completion_id)
        if messages is None:
            raise not_found(completion_id)
        indexes = range(len(messages))
        if query.order == "desc":
            indexes = indexes[::-1]
        if query.after is not None:
            after = query.after
            indexes = indexes[after + 1 :] if query.order == "asc" else _below(indexes, after)
        chosen = indexes[: query.limit + 1]
        items = [store_message(completion_id, i, messages[i]) for i in chosen[: query.limit]]
        return _page(items, has_more=len(chosen) > query.limit)


def _below(descending: range, after: int) -> range:
    """The indexes of a descending range that come after (are smaller than) `after`."""
    return descending[max(0, descending.start - after + 1) :] if after >= 0 else descending[:0]


def _page(data: list[Any], *, has_more: bool) -> CursorPage:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
