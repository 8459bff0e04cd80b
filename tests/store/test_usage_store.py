"""Usage per minute on both engines: meters (one per worker process or server) adding to the
same rows, what a flush keeps when the database refuses it, retention of the rows, and the
daily per-model sums a project's pages read (`daily_usage_by_model`)."""

from __future__ import annotations

from typing import Any

import pytest

from chatkeep.store.base import Cutoffs
from chatkeep.store.factory import MigratableStore
from chatkeep.store.usage import (
    UsageCount,
    UsageFilter,
    UsageTotal,
    daily_usage_by_model,
    usage_store_for,
)
from chatkeep.usage.meter import UsageMeter
from tests.store.conftest import StoreFactory
from tests.store.test_store_contract import new_completion

pytestmark = pytest.mark.anyio
DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def usage(prompt: int, completion: int, cached: int | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        found["prompt_tokens_details"] = {"cached_tokens": cached}
    return found


async def test_meters_of_several_processes_add_up_in_one_row(make_store: StoreFactory) -> None:
    stores = [make_store(), make_store()]
    for store in stores:
        await store.open()
    try:
        meters = [UsageMeter(usage_store_for(store)) for store in stores]
        for meter in meters:
            for n in range(3):
                meter.record("alpha", "key_a", "gpt-4o", T0 + 5 + n, usage(10, 2, cached=4))
            meter.record("alpha", "key_a", "gpt-4o", T0 + 65, usage(1, 1))
            await meter.flush()
            assert meter.pending == 0
            # A second flush of the same minute adds to the row, never replaces it.
            meter.record("alpha", "key_a", "gpt-4o", T0 + 30, usage(100, 0))
            await meter.flush()
        totals = await usage_store_for(stores[0]).usage_totals(
            UsageFilter(start=T0, end=T0 + 120), width=60, group_by=("model",)
        )
    finally:
        for store in stores:
            await store.close()
    assert totals == [
        UsageTotal(T0, None, "gpt-4o", None, 8, 2 * (30 + 100), 24, 12),
        UsageTotal(T0 + 60, None, "gpt-4o", None, 2, 2, 0, 2),
    ]


async def test_malformed_or_missing_usage_counts_the_request_and_no_tokens(
    store: MigratableStore,
) -> None:
    meter = UsageMeter(usage_store_for(store))
    meter.record("alpha", None, "m", T0, None)
    meter.record("alpha", None, "m", T0, {"prompt_tokens": "9", "completion_tokens": -1})
    meter.record("alpha", None, "m", T0, {"prompt_tokens": 3, "prompt_tokens_details": None})
    await meter.flush()
    totals = await usage_store_for(store).usage_totals(
        UsageFilter(start=T0, end=T0 + 60), width=60, group_by=("api_key_id",)
    )
    assert totals == [UsageTotal(T0, None, None, None, 3, 3, 0, 0)]  # keyless: key id None


async def test_an_upstreams_odd_model_or_counts_never_block_the_flush(
    store: MigratableStore,
) -> None:
    meter = UsageMeter(usage_store_for(store))
    for model in ("a\x00b", "x\ud800", 12):
        meter.record("alpha", "key_a", model, T0, usage(10**30, 1))  # type: ignore[arg-type]
    await meter.flush()
    assert meter.pending == 0  # written, not kept to fail again
    totals = await usage_store_for(store).usage_totals(
        UsageFilter(start=T0, end=T0 + 60), width=60, group_by=("model",)
    )
    assert sorted((t.model, t.requests, t.input_tokens) for t in totals) == [
        ("12", 1, 0), ("a\\x00b", 1, 0), ("x\\ud800", 1, 0)
    ]  # fmt: skip


async def test_a_refused_flush_is_kept_and_written_by_the_next(make_store: StoreFactory) -> None:
    store = make_store()
    await store.open()
    meter = UsageMeter(usage_store_for(store))
    meter.record("alpha", "key_a", "m", T0, usage(5, 5))
    await store.close()  # the database is gone for this store
    await meter.flush()
    assert meter.pending == 1
    meter.record("alpha", "key_a", "m", T0 + 1, usage(1, 1))
    assert meter.pending == 1  # the same minute's counter
    await store.open()  # the database is back
    try:
        await meter.aclose()  # shutdown writes what is left
        totals = await usage_store_for(store).usage_totals(
            UsageFilter(start=T0, end=T0 + 60), width=60
        )
    finally:
        await store.close()
    assert totals == [UsageTotal(T0, None, None, None, 2, 6, 0, 6)]


async def test_usage_survives_the_retention_of_completions_and_has_its_own(
    store: MigratableStore,
) -> None:
    completion = new_completion(project="alpha")
    await store.insert(completion)
    now = T0 + 500 * DAY
    meter = UsageMeter(usage_store_for(store), retention_days=400, clock=lambda: now)
    meter.record("alpha", "key_a", "m", T0, usage(1, 1))  # 500 days old
    meter.record("alpha", "key_a", "m", now - 10 * DAY, usage(2, 2))
    await meter.flush()
    # Content and records of every completion purged: the usage stays.
    everything = Cutoffs(content_before="~", records_before="~")
    await store.purge(lambda _project: everything)
    assert await store.get("alpha", completion.id) is None
    where = UsageFilter(start=0, end=now)
    assert [t.requests for t in await usage_store_for(store).usage_totals(where, width=DAY)] == [
        1,
        1,
    ]
    assert await meter.purge() == 1  # the row older than 400 days
    left = await usage_store_for(store).usage_totals(where, width=DAY)
    assert [(t.bucket, t.input_tokens) for t in left] == [(now - 10 * DAY - (now % DAY), 2)]


async def test_daily_usage_by_model_is_one_projects_days(store: MigratableStore) -> None:
    usage_store = usage_store_for(store)
    await usage_store.add_usage(
        [
            UsageCount("alpha", T0 + 60, "a", "key_1", 2, 20, 5, 4),
            UsageCount("alpha", T0 + 3600, "a", "key_2", 1, 10, 0, 1),
            UsageCount("alpha", T0 + 3600, "b", "key_1", 1, 7, 0, 7),
            UsageCount("alpha", T0 + DAY, "a", "key_1", 3, 30, 0, 3),
            UsageCount("beta", T0 + 60, "a", "key_9", 50, 500, 0, 50),
        ]
    )
    days = await daily_usage_by_model(usage_store, "alpha", T0, T0 + 2 * DAY)
    assert days == [
        UsageTotal(T0, "alpha", "a", None, 3, 30, 5, 5),
        UsageTotal(T0, "alpha", "b", None, 1, 7, 0, 7),
        UsageTotal(T0 + DAY, "alpha", "a", None, 3, 30, 0, 3),
    ]
    assert await daily_usage_by_model(usage_store, "alpha", T0 + 2 * DAY, T0 + 3 * DAY) == []
