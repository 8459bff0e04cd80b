"""Query strings of the two list endpoints, parsed and validated.

`metadata[key]=value` pairs arrive as bracketed keys (percent-encoded by some clients;
the web framework has decoded them by the time they reach here). A parameter given twice
takes its last value. Unknown parameters are ignored, as OpenAI ignores them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from chatkeep.errors import InvalidRequestError
from chatkeep.ids import is_completion_id, parse_message_id
from chatkeep.protocol.search import SearchQuery, parse_search

Order = Literal["asc", "desc"]
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
METADATA_PREFIX = "metadata["


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page of `GET /v1/chat/completions`."""

    limit: int = DEFAULT_LIMIT
    order: Order = "asc"
    after: str | None = None
    model: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # chatkeep's extensions: only completions created strictly after / before these Unix
    # seconds.
    created_after: int | None = None
    created_before: int | None = None
    # Full-text search (`protocol.search`): only completions whose text matches.
    search: SearchQuery | None = None


@dataclass(frozen=True, slots=True)
class MessagesQuery:
    """One page of `GET /v1/chat/completions/{id}/messages`; `after` is a message index."""

    limit: int = DEFAULT_LIMIT
    order: Order = "asc"
    after: int | None = None


def parse_int(name: str, raw: str, expected: str = "an integer") -> int:
    """The integer a query parameter holds, or a 400 `invalid_type` naming it."""
    try:
        return int(raw.strip())
    except ValueError:
        raise InvalidRequestError(
            f"Invalid type for '{name}': expected {expected}, but got '{raw}' instead.",
            param=name,
            code="invalid_type",
        ) from None


def parse_limit(raw: str, maximum: int | None = MAX_LIMIT) -> int:
    """A page's (or, with no `maximum`, an export's) `limit`: an integer from 1."""
    limit = parse_int("limit", raw)
    if limit < 1:
        raise InvalidRequestError(
            "Invalid 'limit': integer below minimum value. "
            f"Expected a value >= 1, but got {limit} instead.",
            param="limit",
            code="integer_below_min_value",
        )
    if maximum is not None and limit > maximum:
        raise InvalidRequestError(
            "Invalid 'limit': integer above maximum value. "
            f"Expected a value <= {maximum}, but got {limit} instead.",
            param="limit",
            code="integer_above_max_value",
        )
    return limit


def parse_order(raw: str) -> Order:
    if raw == "asc":
        return "asc"
    if raw == "desc":
        return "desc"
    raise InvalidRequestError(
        f"Invalid value: '{raw}'. Supported values are: 'asc' and 'desc'.",
        param="order",
        code="invalid_value",
    )


# The latest time a bound may name (the year 5138); ids hold milliseconds in 48 bits.
MAX_CREATED = 10**11


def parse_created(name: str, raw: str) -> int:
    """A `created_after` / `created_before` bound: Unix seconds, a non-negative integer."""
    value = parse_int(name, raw, "an integer (Unix seconds)")
    if not 0 <= value <= MAX_CREATED:
        raise InvalidRequestError(
            f"Invalid '{name}': expected Unix seconds from 0 to {MAX_CREATED}, but got "
            f"{value} instead.",
            param=name,
            code="invalid_value",
        )
    return value


def _invalid_after(raw: str, expected: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid 'after': expected {expected}, but got '{raw}' instead.",
        param="after",
        code="invalid_value",
    )


def _page(query: dict[str, str]) -> tuple[int, Order]:
    """`limit` and `order`, which both list endpoints take alike."""
    limit = parse_limit(query["limit"]) if "limit" in query else DEFAULT_LIMIT
    order = parse_order(query["order"]) if "order" in query else "asc"
    return limit, order


def parse_list_query(params: Iterable[tuple[str, str]]) -> ListQuery:
    query = dict(params)  # a parameter given twice takes its last value
    limit, order = _page(query)
    after = query.get("after")
    if after is not None and not is_completion_id(after):
        raise _invalid_after(after, "the id of a chat completion ('chatcmpl-...')")
    metadata: dict[str, str] = {}
    for key, value in query.items():
        if key == "metadata" or key.startswith(METADATA_PREFIX):
            if not (key.endswith("]") and len(key) > len(METADATA_PREFIX) + 1):
                raise InvalidRequestError(
                    f"Invalid query parameter '{key}': filter by metadata with "
                    "'metadata[key]=value'.",
                    param="metadata",
                    code="invalid_value",
                )
            metadata[key[len(METADATA_PREFIX) : -1]] = value
    created = {
        name: parse_created(name, query[name])
        for name in ("created_after", "created_before")
        if name in query
    }
    return ListQuery(
        limit=limit,
        order=order,
        after=after,
        model=query.get("model"),
        metadata=metadata,
        created_after=created.get("created_after"),
        created_before=created.get("created_before"),
        search=parse_search(query["search"]) if "search" in query else None,
    )


def parse_messages_query(completion_id: str, params: Iterable[tuple[str, str]]) -> MessagesQuery:
    query = dict(params)  # a parameter given twice takes its last value
    limit, order = _page(query)
    after: int | None = None
    if "after" in query:
        parsed = parse_message_id(query["after"])
        if parsed is None or parsed[0] != completion_id:
            raise _invalid_after(
                query["after"], f"a message id of this completion ('{completion_id}-N')"
            )
        after = parsed[1]
    return MessagesQuery(limit=limit, order=order, after=after)
