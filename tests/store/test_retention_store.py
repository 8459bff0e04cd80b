"""Retention in the stores, on both engines: what a purge removes, keeps and counts, in
batches, across projects, and the lock that lets one server purge at a time."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chatkeep.ids import completion_id_floor
from chatkeep.protocol.queries import ListQuery
from chatkeep.store import postgres_purge, sqlite, sqlite_purge
from chatkeep.store.base import Cutoffs, NewCompletion, PurgeCount
from chatkeep.store.factory import MigratableStore
from chatkeep.store.schema import MIGRATIONS
from tests.store.conftest import RawExecute, StoreFactory
from tests.store.test_store_contract import insert_all, new_completion, served

pytestmark = pytest.mark.anyio
DAY_MS = 86_400_000


def minted_at(ms: int, n: int, project: str = "proj", **kw: Any) -> NewCompletion:
    """A completion whose id was minted at `ms` (+ n, to keep them apart)."""
    c = new_completion(project=project, **kw)
    cid = completion_id_floor(ms + n)
    return dataclasses.replace(c, id=cid, completion={**c.completion, "id": cid})


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 3, so that every purge here runs several of them."""
    for name in ("FIRST_BATCH", "MIN_BATCH", "MAX_BATCH"):
        monkeypatch.setattr(sqlite_purge, name, 3)
    monkeypatch.setattr(postgres_purge, "BATCH", 3)


async def ids(store: MigratableStore, project: str = "proj") -> list[str]:
    return [item["id"] for item in await store.list(project, ListQuery(limit=100))]


async def test_content_goes_before_the_record_and_each_cutoff_is_exclusive(
    store: MigratableStore, raw_execute: RawExecute
) -> None:
    now = 100 * DAY_MS
    old = [minted_at(now - 40 * DAY_MS, n, metadata={"team": "a"}) for n in range(7)]
    older = [minted_at(now - 100 * DAY_MS, n) for n in range(4)]
    at_cutoff = minted_at(now - 30 * DAY_MS, 0, metadata={"team": "a"})
    fresh = minted_at(now - DAY_MS, 0, metadata={"team": "a"})
    other = [minted_at(now - 40 * DAY_MS, n, project="other") for n in range(5)]
    await insert_all(store, [*older, *old, at_cutoff, fresh, *other])
    cutoffs = {
        "proj": Cutoffs(
            completion_id_floor(now - 30 * DAY_MS), completion_id_floor(now - 90 * DAY_MS)
        ),
        "other": Cutoffs(None, None),
    }

    counted = await store.purge(cutoffs.__getitem__, dry_run=True)
    assert counted == {"proj": PurgeCount(content=7, records=4), "other": PurgeCount()}
    assert await store.purge(cutoffs.__getitem__) == counted
    assert await store.purge(cutoffs.__getitem__) == {"proj": PurgeCount(), "other": PurgeCount()}

    assert await ids(store) == [at_cutoff.id, fresh.id]
    assert await store.get("proj", old[0].id) is None
    assert await store.messages("proj", old[0].id) is None
    assert await store.update_metadata("proj", old[0].id, {"x": "y"}) is None
    assert await store.delete("proj", old[0].id) is False
    assert await store.get("proj", fresh.id) == served(fresh)
    filtered = await store.list("proj", ListQuery(metadata={"team": "a"}))
    assert [item["id"] for item in filtered] == [at_cutoff.id, fresh.id]
    assert await ids(store, "other") == [c.id for c in other]
    # The records of the content-purged stay, with usage and metadata; no filter rows.
    kept = await raw_execute(
        "SELECT count(*) FROM completions WHERE project = $1 AND id < $2",
        "proj", completion_id_floor(now - 30 * DAY_MS),
    )  # fmt: skip
    assert kept == [(7,)]
    pairs = await raw_execute(
        "SELECT count(*) FROM completion_metadata WHERE project = $1 AND completion_id < $2",
        "proj", completion_id_floor(now - 30 * DAY_MS),
    )  # fmt: skip
    assert pairs == [(0,)]


async def test_a_purge_of_one_project_leaves_the_others(store: MigratableStore) -> None:
    now = 100 * DAY_MS
    a = [minted_at(now - 40 * DAY_MS, n, project="a") for n in range(4)]
    b = [minted_at(now - 40 * DAY_MS, n, project="b") for n in range(4)]
    await insert_all(store, [*a, *b])
    everything = Cutoffs(completion_id_floor(now), completion_id_floor(now))
    assert await store.purge(lambda name: everything, project="a") == {"a": PurgeCount(records=4)}
    assert await ids(store, "a") == [] and len(await ids(store, "b")) == 4


async def test_a_record_without_content_is_never_served(store: MigratableStore) -> None:
    shown = new_completion(metadata={"k": "v"})
    hidden = dataclasses.replace(new_completion(metadata={"k": "v"}), keep_content=False)
    await insert_all(store, [shown, hidden])
    assert await store.get("proj", hidden.id) is None
    assert await store.messages("proj", hidden.id) is None
    assert await ids(store) == [shown.id]
    assert [i["id"] for i in await store.list("proj", ListQuery(metadata={"k": "v"}))] == [shown.id]
    assert await store.delete("proj", hidden.id) is False


async def test_the_purge_lock_is_held_by_one_at_a_time(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()
    await first.open()
    await second.open()
    try:
        async with first.purge_lock() as got_first:
            assert got_first
            async with second.purge_lock() as got_second:
                # SQLite's single writer per file serializes purges instead.
                assert got_second is isinstance(second, sqlite.SQLiteStore)
        async with second.purge_lock() as got_again:
            assert got_again
    finally:
        await first.close()
        await second.close()


async def test_the_upgrade_gives_older_completions_records_with_usage(
    make_store: StoreFactory, raw_execute: RawExecute
) -> None:
    before = [m.name for m in MIGRATIONS].index("0004_lifecycle") - 1
    await make_store().upgrade(through=MIGRATIONS[before].name)
    c = new_completion(metadata={"team": "a"})
    await raw_execute(
        "INSERT INTO completions (project, id, model, created, completion, metadata, messages) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        c.project, c.id, c.model, c.created,
        f'{{"id": "{c.id}", "usage": {{"total_tokens": 9}}, '
        '"choices": [{"finish_reason": "length"}, {"finish_reason": "stop"}]}',
        '{"team": "a"}', '[{"role": "user", "content": "hi"}]',
    )  # fmt: skip
    await make_store().upgrade()
    row = await raw_execute("SELECT usage, finish_reasons FROM completions WHERE id = $1", c.id)
    usage, reasons = (str(v).replace(" ", "") for v in row[0])
    assert usage == '{"total_tokens":9}' and reasons == '["length","stop"]'
    store = make_store()
    await store.open()
    try:
        assert (await store.get("proj", c.id) or {})["usage"] == {"total_tokens": 9}
        assert await store.messages("proj", c.id) == [{"role": "user", "content": "hi"}]
    finally:
        await store.close()
