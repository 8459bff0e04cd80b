"""What an export writes: its format, the list filters, and the options that pick lines.

The route's query string is parsed here (`parse_export_query`); the CLI checks the same
values with click's types and builds `ExportOptions` itself. Every bad value is an
`InvalidRequestError` naming its parameter, and so is a parameter the route does not know
(an export that silently ignored a misspelt filter would export everything).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from chatkeep.errors import InvalidRequestError
from chatkeep.protocol.queries import (
    METADATA_PREFIX,
    ListQuery,
    parse_int,
    parse_limit,
    parse_list_query,
)

ExportFormat = Literal["openai-finetune", "openai-evals", "jsonl"]
FORMATS: tuple[ExportFormat, ...] = ("openai-finetune", "openai-evals", "jsonl")
# The list route's filters, which the export takes as they are (`parse_list_query`).
_LIST_FILTERS = frozenset({"model", "order", "after", "created_after", "created_before", "search"})
_OPTIONS = frozenset({"format", "finish_reason", "limit", "sample_rate", "seed"})
# A seed is any int64, as the create request's `seed` is.
_SEED_RANGE = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """One export. `query` holds the list filters (`model`, `metadata`, `order`, `after`);
    its `limit` is ignored (the walk pages by itself). `limit` caps the lines written;
    `sample_rate` keeps that share of the completions, chosen by `seed` (`walk.sampled`)."""

    format: ExportFormat
    query: ListQuery = field(default_factory=ListQuery)
    only_stop: bool = False
    limit: int | None = None
    sample_rate: float = 1.0
    seed: int = 0


def _supported(values: Iterable[str]) -> str:
    quoted = [f"'{value}'" for value in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def check_format(raw: str) -> ExportFormat:
    for known in FORMATS:
        if raw == known:
            return known
    raise InvalidRequestError(
        f"Invalid value: '{raw}'. Supported values are: {_supported(FORMATS)}.",
        param="format",
        code="invalid_value",
    )


def check_limit(raw: str) -> int:
    """An export's `limit`: lines, from 1, with no maximum (a page's is 100)."""
    return parse_limit(raw, maximum=None)


def check_sample_rate(raw: str) -> float:
    try:
        rate = float(raw.strip())
    except ValueError:
        rate = math.nan
    if math.isnan(rate):
        raise InvalidRequestError(
            f"Invalid type for 'sample_rate': expected a number, but got '{raw}' instead.",
            param="sample_rate",
            code="invalid_type",
        )
    if rate <= 0:
        raise InvalidRequestError(
            "Invalid 'sample_rate': number below minimum value. "
            f"Expected a value > 0, but got {raw} instead.",
            param="sample_rate",
            code="decimal_below_min_value",
        )
    if rate > 1:
        raise InvalidRequestError(
            "Invalid 'sample_rate': number above maximum value. "
            f"Expected a value <= 1, but got {raw} instead.",
            param="sample_rate",
            code="decimal_above_max_value",
        )
    return rate


def check_seed(raw: str) -> int:
    seed = parse_int("seed", raw)
    low, high = _SEED_RANGE
    if not low <= seed <= high:
        raise InvalidRequestError(
            f"Invalid 'seed': expected a 64-bit integer, but got {seed} instead.",
            param="seed",
            code="invalid_value",
        )
    return seed


def check_finish_reason(raw: str) -> bool:
    """`finish_reason=stop` keeps only lines whose answers stopped by themselves."""
    if raw != "stop":
        raise InvalidRequestError(
            f"Invalid value: '{raw}'. Supported values are: 'stop'.",
            param="finish_reason",
            code="invalid_value",
        )
    return True


def parse_export_query(params: Iterable[tuple[str, str]]) -> ExportOptions:
    """The options of `GET /v1/chatkeep/exports/chat_completions`; a parameter given
    twice takes its last value, as on the list route."""
    query = dict(params)
    for key in query:
        if key in _LIST_FILTERS or key in _OPTIONS:
            continue
        if key == "metadata" or key.startswith(METADATA_PREFIX):
            continue  # parse_list_query checks its shape
        raise InvalidRequestError(
            f"Unrecognized query parameter: '{key}'. Supported parameters are: "
            f"{_supported(sorted([*_OPTIONS, *_LIST_FILTERS, 'metadata[key]']))}.",
            param=key,
            code="unknown_parameter",
        )
    if "format" not in query:
        raise InvalidRequestError(
            "Missing required parameter: 'format'.",
            param="format",
            code="missing_required_parameter",
        )
    export_format = check_format(query["format"])
    filters = parse_list_query((key, value) for key, value in query.items() if key not in _OPTIONS)
    only_stop = check_finish_reason(query["finish_reason"]) if "finish_reason" in query else False
    return ExportOptions(
        format=export_format,
        query=filters,
        only_stop=only_stop,
        limit=check_limit(query["limit"]) if "limit" in query else None,
        sample_rate=check_sample_rate(query["sample_rate"]) if "sample_rate" in query else 1.0,
        seed=check_seed(query["seed"]) if "seed" in query else 0,
    )
