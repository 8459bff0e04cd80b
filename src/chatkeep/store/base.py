"""The CompletionStore seam: the narrow interface every storage engine implements.

Every call is scoped to a project: a store never returns, changes or deletes a completion
of another project, and answers as if it did not exist. Ids sort as strings in creation
order (see `chatkeep.ids`), so list cursors are plain id comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from chatkeep.protocol.queries import ListQuery

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
    # The create request's `messages`, exactly as sent.
    messages: list[dict[str, Any]]


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

    # Last in the class: the name `list` shadows the builtin for annotations below it.
    async def list(self, project: str, query: ListQuery) -> list[dict[str, Any]]:
        """Up to `query.limit + 1` stored objects in id order after the cursor.

        The extra item tells the caller that there is a next page.
        """
        ...
