"""OpenAI's usage and costs pages (`UsageResponse`), built from the store's minute counts.

Buckets are aligned to their width in UTC (minutes, hours, UTC days), as OpenAI's are; the
first and last are cut to the asked range, and say so in their `start_time` / `end_time`.
Every bucket of the page is listed, with empty `results` where nothing was used. A project
key sees its own project only (other projects in `project_ids` match nothing); an admin key
sees every project. Usage counted by this process and not yet written is written first, so
a caller reads its own completions at once (other workers' within their flush interval).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chatkeep.service.access import Caller
from chatkeep.store.usage import (
    UsageFilter,
    UsageGroup,
    UsageStore,
    UsageTotal,
    daily_usage_by_model,
)
from chatkeep.usage.meter import UsageMeter
from chatkeep.usage.prices import PriceBook
from chatkeep.usage.query import UsageQuery, encode_page

CURRENCY = "usd"
USAGE_RESULT = "organization.usage.completions.result"
COSTS_RESULT = "organization.costs.result"
_STORE_GROUPS: dict[str, UsageGroup] = {
    "project_id": "project",
    "model": "model",
    "api_key_id": "api_key_id",
}


@dataclass(frozen=True, slots=True)
class _Bucket:
    aligned: int  # the bucket's start, a multiple of the width
    start: int  # as shown: cut to the asked range
    end: int


@dataclass(frozen=True, slots=True)
class CostsPage:
    """A costs page, and the models used in it that have no price (they cost nothing)."""

    body: dict[str, Any]
    unpriced: list[str]


def _buckets(query: UsageQuery) -> tuple[list[_Bucket], int | None]:
    """The page's buckets, and the aligned start of the next page's first (None: last)."""
    width = query.width
    aligned = query.page if query.page is not None else query.start - query.start % width
    buckets: list[_Bucket] = []
    while len(buckets) < query.limit and aligned < query.end:
        buckets.append(_Bucket(aligned, max(aligned, query.start), min(aligned + width, query.end)))
        aligned += width
    return buckets, (aligned if aligned < query.end else None)


def _visible(caller: Caller, asked: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The projects a caller may see, of those asked for (None: every project)."""
    if caller.admin:
        return asked
    if asked is None or caller.project in asked:
        return (caller.project,)
    return ()


def _page(
    buckets: list[_Bucket], results: dict[int, list[dict[str, Any]]], next_at: int | None
) -> dict[str, Any]:
    return {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": bucket.start,
                "end_time": bucket.end,
                "results": results.get(bucket.aligned, []),
            }
            for bucket in buckets
        ],
        "has_more": next_at is not None,
        "next_page": None if next_at is None else encode_page(next_at),
    }


class UsageReports:
    """Answers the usage and costs routes from `store`, after flushing `meter`."""

    def __init__(self, store: UsageStore, meter: UsageMeter, prices: PriceBook) -> None:
        self._store = store
        self._meter = meter
        self._prices = prices

    async def _totals(
        self,
        caller: Caller,
        query: UsageQuery,
        buckets: list[_Bucket],
        groups: Iterable[UsageGroup],
    ) -> list[UsageTotal]:
        # Nothing is a batch job and no call has a user: those filters keep all or nothing.
        if not buckets or query.batch is True or query.user_ids is not None:
            return []
        where = UsageFilter(
            start=buckets[0].start,
            end=buckets[-1].end,
            projects=_visible(caller, query.project_ids),
            api_key_ids=query.api_key_ids,
            models=query.models,
        )
        if where.projects == ():
            return []
        await self._meter.flush()
        return await self._store.usage_totals(where, width=query.width, group_by=tuple(groups))

    async def daily_by_model(self, project: str, start: int, end: int) -> list[UsageTotal]:
        """One project's requests and tokens per UTC day and model in [start, end) (Unix
        seconds), this process's counts written first: the web UI's usage page."""
        await self._meter.flush()
        return await daily_usage_by_model(self._store, project, start, end)

    async def completions_usage(self, caller: Caller, query: UsageQuery) -> dict[str, Any]:
        """A page of `GET /v1/organization/usage/completions`."""
        buckets, next_at = _buckets(query)
        groups = [_STORE_GROUPS[g] for g in query.group_by if g in _STORE_GROUPS]
        results: dict[int, list[dict[str, Any]]] = {}
        for total in await self._totals(caller, query, buckets, groups):
            results.setdefault(total.bucket, []).append(_usage_result(total, query.group_by))
        return _page(buckets, results, next_at)

    async def costs(self, caller: Caller, query: UsageQuery) -> CostsPage:
        """A page of `GET /v1/organization/costs`, priced by the config file's prices."""
        buckets, next_at = _buckets(query)
        groups = [_STORE_GROUPS[g] for g in query.group_by if g in _STORE_GROUPS]
        totals = await self._totals(caller, query, buckets, [*groups, "model"])
        sums: dict[tuple[Any, ...], list[Decimal]] = {}
        unpriced: set[str] = set()
        for total in totals:
            model = total.model or ""
            if self._prices.price_for(model) is None:
                unpriced.add(model)
            for line_item, quantity, amount in self._line_items(total):
                key = (
                    total.bucket,
                    total.project if "project_id" in query.group_by else None,
                    total.api_key_id if "api_key_id" in query.group_by else None,
                    line_item if "line_item" in query.group_by else None,
                )
                found = sums.setdefault(key, [Decimal(0), Decimal(0)])
                found[0] += amount
                found[1] += quantity
        results: dict[int, list[dict[str, Any]]] = {}
        for key in sorted(sums, key=lambda k: tuple("" if v is None else str(v) for v in k)):
            results.setdefault(key[0], []).append(_costs_result(key, sums[key]))
        return CostsPage(_page(buckets, results, next_at), sorted(unpriced))

    def _line_items(self, total: UsageTotal) -> list[tuple[str, Decimal, Decimal]]:
        """(line item, tokens, USD) of one total, as OpenAI names its line items."""
        model = total.model or ""
        cost = self._prices.cost(
            model, total.input_tokens, total.cached_tokens, total.output_tokens
        )
        cached = min(total.cached_tokens, total.input_tokens)
        items = [
            (f"{model}, input", Decimal(total.input_tokens - cached), cost.input),
            (f"{model}, cached input", Decimal(cached), cost.cached_input),
            (f"{model}, output", Decimal(total.output_tokens), cost.output),
        ]
        return [item for item in items if item[1]] or items[:1]


def _usage_result(total: UsageTotal, group_by: tuple[str, ...]) -> dict[str, Any]:
    return {
        "object": USAGE_RESULT,
        "input_tokens": total.input_tokens,
        "output_tokens": total.output_tokens,
        "input_cached_tokens": total.cached_tokens,
        "num_model_requests": total.requests,
        "project_id": total.project,
        # chatkeep's keys belong to projects, like OpenAI's service-account keys, whose
        # usage has no user; and chatkeep has no batch API.
        "user_id": None,
        "api_key_id": total.api_key_id if "api_key_id" in group_by else None,
        "model": total.model,
        "batch": False if "batch" in group_by else None,
        "service_tier": None,
    }


def _costs_result(key: tuple[Any, ...], sums: list[Decimal]) -> dict[str, Any]:
    _, project, api_key_id, line_item = key
    return {
        "object": COSTS_RESULT,
        "amount": {"value": float(sums[0]), "currency": CURRENCY},
        "line_item": line_item,
        "project_id": project,
        "api_key_id": api_key_id,
        "quantity": float(sums[1]) if line_item is not None else None,
        "quantity_unit": "tokens" if line_item is not None else None,
    }
