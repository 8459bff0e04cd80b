"""`models(project)` on both stores: the distinct models a project's completions were made
with, in name order, another project's never among them."""

from __future__ import annotations

import pytest

from chatkeep.store.factory import MigratableStore
from tests.store.test_store_contract import insert_all, new_completion

pytestmark = pytest.mark.anyio


async def test_the_models_seen_in_a_project(store: MigratableStore) -> None:
    assert await store.models("proj") == []
    await insert_all(
        store,
        [new_completion(model=m) for m in ("gpt-4o", "o4-mini", "gpt-4o", "Echo", "gpt-4o")]
        + [new_completion(project="other", model="secret-model")],
    )
    assert await store.models("proj") == ["Echo", "gpt-4o", "o4-mini"]  # byte order
    assert await store.models("other") == ["secret-model"]
    assert await store.models("nobody") == []
