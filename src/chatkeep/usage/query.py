"""The query strings of `GET /v1/organization/usage/completions` and `/v1/organization/costs`,
parsed and validated as OpenAI documents them; every bad value is a 400 naming its `param`.

Arrays come as repeated parameters, with or without `[]` (the official SDKs send
`group_by[]=model`). Unknown parameters are ignored, as on the list routes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from chatkeep.errors import InvalidRequestError
from chatkeep.protocol.queries import MAX_CREATED, parse_int

Route = Literal["completions", "costs"]
WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
# bucket_width: (default limit, most buckets a page may hold) [spec].
COMPLETIONS_LIMITS = {"1d": (7, 31), "1h": (24, 168), "1m": (60, 1440)}
COSTS_LIMITS = {"1d": (7, 180)}
COMPLETIONS_GROUPS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")
COSTS_GROUPS = ("project_id", "line_item", "api_key_id")
# Grouping the spec allows and chatkeep cannot answer truthfully: it records no tier.
UNRECORDED_GROUPS = {
    "service_tier": "chatkeep does not record the service tier of completions, so it cannot "
    "group by it; group by 'model', 'project_id' or 'api_key_id'.",
}
PAGE_PREFIX = "page_"
_LISTS = ("group_by", "project_ids", "api_key_ids", "models", "user_ids")


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """One page of usage or costs: the range [start, end) in Unix seconds, the bucket width
    in seconds, and the aligned start of the page's first bucket (None: the first page)."""

    start: int
    end: int
    width: int
    limit: int
    page: int | None = None
    group_by: tuple[str, ...] = ()
    project_ids: tuple[str, ...] | None = None
    api_key_ids: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    user_ids: tuple[str, ...] | None = None
    batch: bool | None = None


def _invalid(param: str, message: str, code: str = "invalid_value") -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code=code)


def _split(items: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Single values (the last one wins) and the array parameters' values, in order."""
    single: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for key, value in items:
        name = key.removesuffix("[]")
        if name in _LISTS:
            lists.setdefault(name, []).append(value)
        else:
            single[key] = value
    return single, lists


def _choice(param: str, value: str, allowed: Iterable[str]) -> str:
    options = list(allowed)
    if value in options:
        return value
    shown = ", ".join(f"'{o}'" for o in options[:-1]) + f" and '{options[-1]}'"
    if len(options) == 1:
        shown = f"'{options[0]}'"
    raise _invalid(param, f"Invalid value: '{value}'. Supported values are: {shown}.")


def _seconds(param: str, raw: str) -> int:
    value = parse_int(param, raw, "an integer (Unix seconds)")
    if not 0 <= value <= MAX_CREATED:
        raise _invalid(
            param,
            f"Invalid '{param}': expected Unix seconds from 0 to {MAX_CREATED}, but got "
            f"{value} instead.",
        )
    return value


def _range(single: dict[str, str], now: int) -> tuple[int, int]:
    if "start_time" not in single:
        raise _invalid(
            "start_time",
            "Missing required parameter: 'start_time'.",
            "missing_required_parameter",
        )
    start = _seconds("start_time", single["start_time"])
    if "end_time" in single:
        end = _seconds("end_time", single["end_time"])
        if end <= start:
            raise _invalid(
                "end_time",
                f"Invalid 'end_time': {end} is not after 'start_time' ({start}); the range is "
                "[start_time, end_time).",
            )
    else:
        end = now
        if end <= start:
            raise _invalid(
                "start_time",
                f"Invalid 'start_time': {start} is not before the current time ({now}); give "
                "an 'end_time' to ask about a range that ends later.",
            )
    return start, end


def _limit(raw: str | None, width_name: str, limits: dict[str, tuple[int, int]]) -> int:
    default, most = limits[width_name]
    if raw is None:
        return default
    limit = parse_int("limit", raw)
    if not 1 <= limit <= most:
        raise _invalid(
            "limit",
            f"Invalid 'limit': expected a value from 1 to {most} for bucket_width "
            f"'{width_name}', but got {limit} instead.",
        )
    return limit


def encode_page(bucket: int) -> str:
    """The `next_page` cursor of a page whose first bucket starts at `bucket`."""
    return PAGE_PREFIX + base64.urlsafe_b64encode(str(bucket).encode()).decode()


def _page(raw: str, start: int, end: int, width: int) -> int:
    bad = _invalid(
        "page",
        f"Invalid 'page': '{raw}' is not a page of this query; pass the `next_page` of the "
        "previous response, with the same start_time, end_time and bucket_width.",
    )
    if not raw.startswith(PAGE_PREFIX):
        raise bad
    try:
        text = base64.urlsafe_b64decode(raw[len(PAGE_PREFIX) :].encode()).decode()
    except (binascii.Error, ValueError):
        raise bad from None
    if not text.isdigit() or len(text) > 12:
        raise bad
    bucket = int(text)
    if bucket % width or not start - start % width < bucket < end:
        raise bad
    return bucket


def _group_by(values: list[str], route: Route) -> tuple[str, ...]:
    allowed = COMPLETIONS_GROUPS if route == "completions" else COSTS_GROUPS
    chosen: list[str] = []
    for value in values:
        if value in UNRECORDED_GROUPS and route == "completions":
            raise _invalid("group_by", UNRECORDED_GROUPS[value])
        if _choice("group_by", value, allowed) not in chosen:
            chosen.append(value)
    return tuple(chosen)


def _batch(raw: str | None) -> bool | None:
    if raw is None:
        return None
    if raw in ("true", "false"):
        return raw == "true"
    raise _invalid(
        "batch", f"Invalid type for 'batch': expected a boolean, but got '{raw}' instead.",
        "invalid_type",
    )  # fmt: skip


def parse_usage_query(items: Iterable[tuple[str, str]], route: Route, *, now: int) -> UsageQuery:
    """The query of the completions usage route (`route="completions"`) or of the costs
    route (`"costs"`: only `1d` buckets, up to 180 a page, no model or user filters)."""
    single, lists = _split(items)
    start, end = _range(single, now)
    limits = COMPLETIONS_LIMITS if route == "completions" else COSTS_LIMITS
    width_name = _choice("bucket_width", single.get("bucket_width", "1d"), limits)
    width = WIDTHS[width_name]
    limit = _limit(single.get("limit"), width_name, limits)
    page = _page(single["page"], start, end, width) if "page" in single else None

    def listed(name: str) -> tuple[str, ...] | None:
        return tuple(lists[name]) if name in lists else None

    completions = route == "completions"
    return UsageQuery(
        start=start,
        end=end,
        width=width,
        limit=limit,
        page=page,
        group_by=_group_by(lists.get("group_by", []), route),
        project_ids=listed("project_ids"),
        api_key_ids=listed("api_key_ids"),
        models=listed("models") if completions else None,
        user_ids=listed("user_ids") if completions else None,
        batch=_batch(single.get("batch")) if completions else None,
    )
