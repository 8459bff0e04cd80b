"""Reading and changing stored completions: retrieve, list, update, delete, messages.

Every operation is scoped to the caller's project; a completion of another project, an
unknown id, one that was never stored and one that was deleted all answer the same 404.
An id found under no completion is looked up once more among the original ids of imported
completions (`store.imports`), so those answer to the ids their source gave them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from chatkeep.errors import not_found
from chatkeep.protocol.queries import ListQuery, MessagesQuery
from chatkeep.protocol.responses import ChatCompletionDeleted, CursorPage
from chatkeep.service.stored import store_message
from chatkeep.store.base import CompletionStore

T = TypeVar("T")


class StoredCompletions:
    """The read, update and delete side of the stored-completions API."""

    def __init__(self, store: CompletionStore) -> None:
        self._store = store

    async def _on(self, project: str, completion_id: str, fn: Callable[[str], Awaitable[T]]) -> T:
        """`fn` on the completion `completion_id` names: its own, or the one imported under
        that original id when there is none (a miss costs one more lookup, a hit none)."""
        found = await fn(completion_id)
        if found is None or found is False:
            stored_as = await self._store.alias_of(project, completion_id)
            if stored_as is not None:
                return await fn(stored_as)
        return found

    async def retrieve_chat_completion(self, project: str, completion_id: str) -> dict[str, Any]:
        stored = await self._on(project, completion_id, lambda cid: self._store.get(project, cid))
        if stored is None:
            raise not_found(completion_id)
        return stored

    async def list_chat_completions(self, project: str, query: ListQuery) -> CursorPage:
        rows = await self._store.list(project, query)
        return _page(rows[: query.limit], has_more=len(rows) > query.limit)

    async def served_list_page(self, project: str, query: ListQuery) -> CursorPage:
        """`list_chat_completions` for a response body: the items are the stored text,
        not decoded (`StoredText.served`), and only the first and last are read, for
        their ids."""
        rows = await self._store.list_stored(project, query)
        shown = rows[: query.limit]
        ends = (shown[0].served_id(), shown[-1].served_id()) if shown else None
        return _page([row.served() for row in shown], has_more=len(rows) > query.limit, ends=ends)

    async def update_chat_completion(
        self, project: str, completion_id: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        stored = await self._on(
            project,
            completion_id,
            lambda cid: self._store.update_metadata(project, cid, metadata),
        )
        if stored is None:
            raise not_found(completion_id)
        return stored

    async def delete_chat_completion(
        self, project: str, completion_id: str
    ) -> ChatCompletionDeleted:
        if not await self._on(project, completion_id, lambda cid: self._store.delete(project, cid)):
            raise not_found(completion_id)
        return {"id": completion_id, "object": "chat.completion.deleted", "deleted": True}

    async def list_chat_completion_messages(
        self, project: str, completion_id: str, query: MessagesQuery
    ) -> CursorPage:
        messages = await self._on(
            project, completion_id, lambda cid: self._store.messages(project, cid)
        )
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


def _page(data: list[Any], *, has_more: bool, ends: tuple[str, str] | None = None) -> CursorPage:
    """A cursor page of `data`; its first and last ids are `ends` where the items are not
    dicts to read them from (a served list page's stored text)."""
    first, last = ends or ((data[0]["id"], data[-1]["id"]) if data else (None, None))
    return {
        "object": "list",
        "data": data,
        "first_id": first,
        "last_id": last,
        "has_more": has_more,
    }
