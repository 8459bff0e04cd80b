"""The text every engine keeps exactly, and the guard both stores apply at their edge.

PostgreSQL's `text` cannot hold U+0000, and neither engine can hold a lone surrogate (it is
not UTF-8). So that both engines answer alike: a stored text field holding one is refused
with a 400 naming the field, before anything is written; a lookup or filter by one finds
nothing, since nothing stored can hold it. JSON columns keep U+0000 (as the `\\u0000`
escape), so message content and the completion's text round-trip whole on both engines.
"""

from __future__ import annotations

from collections.abc import Iterable

from chatkeep.errors import InvalidRequestError
from chatkeep.protocol.base import keepable
from chatkeep.protocol.queries import ListQuery
from chatkeep.store.base import NewCompletion


def all_keepable(texts: Iterable[str]) -> bool:
    return all(keepable(text) for text in texts)


def query_can_match(query: ListQuery) -> bool:
    """False when a filter value no stored completion can hold: the page is empty."""
    if query.model is not None and not keepable(query.model):
        return False
    return all_keepable(query.metadata) and all_keepable(query.metadata.values())


def check_storable(field: str, texts: Iterable[str]) -> None:
    """Refuse a write whose `field` holds text an engine cannot keep (400, naming it)."""
    if not all_keepable(texts):
        raise unstorable(field)


def check_new_completion(completion: NewCompletion) -> None:
    """Refuse a completion with a text column an engine cannot keep (its JSON columns can)."""
    check_storable("model", (completion.model,))
    check_metadata(completion.metadata)
    check_storable("completion_id", (completion.id, completion.project))


def check_metadata(metadata: dict[str, str]) -> None:
    check_storable("metadata", metadata)
    check_storable("metadata", metadata.values())


def unstorable(field: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid '{field}': the string contains a NUL character (U+0000) or an unpaired "
        "surrogate, which cannot be stored.",
        param=field,
        code="invalid_value",
    )
