"""The completions page's filters: read from the page's URL, turned into the list API's own
query (validated by the API's parser, with its messages), and written back into URLs.

The page's URL keeps every filter (`model`, `mk`/`mv` metadata pairs, `from`/`until` times
in UTC, the `after` cursor, `limit`), so a filtered page is a bookmark and the back button
returns to it. The page lists newest first: the API's `order=desc`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from chatkeep.errors import InvalidRequestError
from chatkeep.protocol.queries import DEFAULT_LIMIT, ListQuery, parse_list_query

PAGE_PATH = "/ui"
API_PATH = "/v1/chat/completions"
_TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")
_MAX_PAIRS = 16  # as many as a completion's metadata may hold


@dataclass(frozen=True, slots=True)
class ListFilters:
    """What the completions page was asked for, as typed into its form."""

    model: str = ""
    metadata: tuple[tuple[str, str], ...] = ()
    created_from: str = ""
    created_until: str = ""
    search: str = ""
    after: str = ""
    limit: int = DEFAULT_LIMIT

    @property
    def active(self) -> bool:
        return bool(
            self.model or self.metadata or self.created_from or self.created_until or self.search
        )

    def api_params(self) -> list[tuple[str, str]]:
        """The list API's query string for this page (its JSON twin)."""
        params = [("order", "desc"), ("limit", str(self.limit))]
        if self.after:
            params.append(("after", self.after))
        if self.model:
            params.append(("model", self.model))
        params += [(f"metadata[{key}]", value) for key, value in self.metadata]
        if self.created_from:
            params.append(("created_after", str(max(0, _unix("from", self.created_from) - 1))))
        if self.created_until:
            params.append(("created_before", str(_unix("until", self.created_until))))
        if self.search:
            params.append(("search", self.search))
        return params

    def to_query(self) -> ListQuery:
        """The API's own `ListQuery`, through its parser: the same checks and messages."""
        return parse_list_query(self.api_params())

    def api_url(self) -> str:
        return f"{API_PATH}?{urlencode(self.api_params())}"

    def page_params(self, *, after: str = "") -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        if self.model:
            params.append(("model", self.model))
        for key, value in self.metadata:
            params += [("mk", key), ("mv", value)]
        if self.created_from:
            params.append(("from", self.created_from))
        if self.created_until:
            params.append(("until", self.created_until))
        if self.search:
            params.append(("q", self.search))
        if self.limit != DEFAULT_LIMIT:
            params.append(("limit", str(self.limit)))
        if after:
            params.append(("after", after))
        return params

    def page_url(self, *, after: str = "") -> str:
        params = self.page_params(after=after)
        return f"{PAGE_PATH}?{urlencode(params)}" if params else PAGE_PATH

    def without_pair(self, index: int) -> str:
        """This page's URL without one metadata pair (a chip's remove link)."""
        pairs = self.metadata[:index] + self.metadata[index + 1 :]
        return ListFilters(
            self.model, pairs, self.created_from, self.created_until, self.search, limit=self.limit
        ).page_url()


def parse_filters(params: Iterable[tuple[str, str]]) -> ListFilters:
    """The page's filters from its query string; bad input raises the API's 400 errors."""
    items = list(params)
    single: Mapping[str, str] = dict(items)
    keys = [value.strip() for name, value in items if name == "mk"]
    values = [value for name, value in items if name == "mv"]
    pairs: list[tuple[str, str]] = []
    for index, key in enumerate(keys):
        value = values[index] if index < len(values) else ""
        if not key and not value:
            continue  # an empty row of the form
        if not key:
            raise InvalidRequestError(
                f"Metadata filter: the value '{value}' has no key.", param="metadata"
            )
        pairs.append((key, value))
    if len(pairs) > _MAX_PAIRS:
        raise InvalidRequestError(f"Metadata filter: at most {_MAX_PAIRS} pairs.", param="metadata")
    limit = DEFAULT_LIMIT
    if single.get("limit", "").strip():
        limit = parse_list_query([("limit", single["limit"])]).limit
    filters = ListFilters(
        model=single.get("model", "").strip(),
        metadata=tuple(pairs),
        created_from=single.get("from", "").strip(),
        created_until=single.get("until", "").strip(),
        search=single.get("q", "").strip(),
        after=single.get("after", "").strip(),
        limit=limit,
    )
    filters.to_query()  # every check the API makes, before the page is built
    return filters


def _unix(name: str, text: str) -> int:
    for shape in _TIME_FORMATS:
        try:
            moment = datetime.strptime(text, shape).replace(tzinfo=UTC)
        except ValueError:
            continue
        return max(0, int(moment.timestamp()))
    raise InvalidRequestError(
        f"Invalid '{name}': expected a UTC date and time like 2026-12-04T09:30 or a date "
        f"like 2026-12-04, but got '{text}' instead.",
        param=name,
        code="invalid_value",
    )
