"""The CompletionStore seam: the narrow interface every storage engine implements.

Every call is scoped to a project: a store never returns, changes or deletes a completion
of another project, and answers as if it did not exist. Ids sort as strings in creation
order (see `chatkeep.ids`), so list cursors are plain id comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from chatkeep.protocol.queries import ListQuery
from chatkeep.store.stored_text import StoredText

DEFAULT_PROJECT = "default"


@dataclass(frozen=True, slots=True)
class NewCompletion:
    """A completion to store: the stored object (without metadata) and its input messages."""

    id: str
    project: str
    model: str
    created: int
    # The stored `chat.completion` object with its request-echo fields, minus `metadata`.
    completion: dict[str, Any]
    metadata: dict[str, str]
    # The create request's `messages`, exactly as sent (after the project's redaction).
    messages: list[dict[str, Any]]
    # Milliseconds from the request's arrival to its answer, for the record.
    latency_ms: int | None = None
    # False: keep the record only (metadata, usage, finish reasons), no text at all.
    keep_content: bool = True
    # An imported completion's original id, when it is not time-ordered like ours
    # (`importer`): the stored object answers to it, and `id` keeps the store's order.
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """What retention removes in one project: completions with ids below `content_before`
    lose their content (and with it every way to be served), those below `records_before`
    are removed whole. None keeps them. Ids sort in creation order (`chatkeep.ids`)."""

    content_before: str | None
    records_before: str | None


@dataclass(slots=True)
class PurgeCount:
    """What a purge removed (or, in a dry run, would remove) in one project."""

    content: int = 0
    records: int = 0


class CompletionStore(Protocol):
    """Storage for stored completions. Implementations: SQLite (embedded), PostgreSQL."""

    async def open(self) -> None:
        """Connect, and bring a blank database to the current schema."""
        ...

    async def close(self) -> None:
        """Finish pending writes and release connections."""
        ...

    async def ping(self) -> None:
        """Raise `StoreUnavailableError` unless the database answers."""
        ...

    async def insert(self, completion: NewCompletion) -> None:
        """Store one completion with its messages in one transaction; durable on return."""
        ...

    async def get(self, project: str, completion_id: str) -> dict[str, Any] | None:
        """The stored object with its current `metadata`, or None."""
        ...

    async def update_metadata(
        self, project: str, completion_id: str, metadata: dict[str, str]
    ) -> dict[str, Any] | None:
        """Replace the metadata map; return the updated stored object, or None if absent."""
        ...

    async def delete(self, project: str, completion_id: str) -> bool:
        """Delete a completion and its messages; False when there was none."""
        ...

    async def messages(self, project: str, completion_id: str) -> list[dict[str, Any]] | None:
        """The input messages of a stored completion, in request order, or None if absent."""
        ...

    async def models(self, project: str) -> list[str]:
        """The models `project`'s completions were made with, in name order (at most
        `queries.MAX_MODELS`): what a model filter can be."""
        ...

    async def alias_of(self, project: str, alias: str) -> str | None:
        """The id an imported completion is stored under, given its original id; None
        when no completion of `project` was imported under that id."""
        ...

    async def import_checkpoint(self, source: str, project: str) -> str | None:
        """The source's last completion id an import into `project` finished, or None."""
        ...

    async def save_import_checkpoint(self, source: str, project: str, after: str) -> None:
        """Record that an import from `source` into `project` got through `after`."""
        ...

    async def purge(
        self,
        cutoffs: Callable[[str], Cutoffs],
        *,
        project: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, PurgeCount]:
        """Apply retention to every project holding completions (or to `project` only), in
        bounded batches that creates and reads never wait long behind; a dry run only
        counts. Deleted text is left nowhere the engine can give it back (docs/lifecycle.md).
        """
        ...

    def purge_lock(self) -> AbstractAsyncContextManager[bool]:
        """Held while purging: True when this caller got it, False when another server of
        the same database holds it (it is purging now)."""
        ...

    async def list_stored(self, project: str, query: ListQuery) -> list[StoredText]:
        """Up to `query.limit + 1` stored objects in id order after the cursor, as their
        stored JSON text (what a list page serves without decoding it).

        The extra item tells the caller that there is a next page.
        """
        ...

    # Last in the class: the name `list` shadows the builtin for annotations below it.
    async def list(self, project: str, query: ListQuery) -> list[dict[str, Any]]:
        """`list_stored`'s objects, decoded."""
        ...
