"""`created_after` / `created_before` on both stores: a range of creation times, strict at
both ends, combined with the cursor, the order and the filters, across week partitions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chatkeep.ids import completion_id_floor
from chatkeep.protocol.queries import ListQuery
from chatkeep.store.factory import MigratableStore
from tests.store.test_store_contract import insert_all, new_completion

pytestmark = pytest.mark.anyio

DAY = 86_400


async def test_a_range_keeps_what_was_created_strictly_inside(store: MigratableStore) -> None:
    # Six completions three days apart (so across weeks), each at second T_k + 0.5 s.
    start = int(time.time()) - 20 * DAY
    seconds = [start + k * 3 * DAY for k in range(6)]
    made = [
        new_completion(
            completion_id=completion_id_floor(t * 1000 + 500),
            metadata={"k": str(k), "team": "a" if k % 2 else "b", "all": "yes"},
        )
        for k, t in enumerate(seconds)
    ]
    await insert_all(store, made)
    ids = [c.id for c in made]

    async def page(**kw: Any) -> list[str]:
        return [item["id"] for item in await store.list("proj", ListQuery(**kw))]

    inside = {"created_after": seconds[1], "created_before": seconds[4]}
    assert await page(**inside) == ids[2:4]
    assert await page(**inside, order="desc") == ids[3:1:-1]
    assert await page(created_after=seconds[1] - 1) == ids[1:]
    assert await page(created_before=seconds[1] + 1) == ids[:2]
    assert await page(created_after=seconds[4], created_before=seconds[4]) == []
    # With a cursor, page by page, in both orders.
    assert await page(limit=1, after=ids[2], **inside) == [ids[3]]
    assert await page(limit=1, after=ids[3], order="desc", **inside) == [ids[2]]
    assert await page(limit=1, after=ids[4], order="desc", **inside) == ids[3:1:-1]
    # With one pair and with two (the sparsest-pair probe), and a model.
    assert await page(metadata={"team": "a"}, **inside) == [ids[3]]
    assert await page(metadata={"all": "yes", "team": "b"}, **inside) == [ids[2]]
    assert await page(metadata={"all": "yes"}, model="echo-1", **inside) == ids[2:4]
    assert await page(model="other", **inside) == []
