"""A large SQLite purge first merges the search index into one segment, in slices, so that
each secure delete looks a word up in one segment instead of in every one; a small purge
does not; and the writer's own WAL checkpoints are back on once a purge ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import NamedTuple

import pytest

from chatkeep.ids import completion_id_floor
from chatkeep.protocol.queries import ListQuery
from chatkeep.protocol.search import parse_search
from chatkeep.store import sqlite_purge, sqlite_search
from chatkeep.store import sqlite_search_upkeep as upkeep
from chatkeep.store.base import Cutoffs
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3
from chatkeep.store.sqlite_search import index_pending
from chatkeep.store.sqlite_search_upkeep import IndexShape, merge_slice, shape, worth_merging
from tests.store.test_retention_store import minted_at

pytestmark = pytest.mark.anyio


class Stored(NamedTuple):
    id: str
    word: str  # in its message and in no other completion's


DAY_MS = 86_400_000
NOW = 100 * DAY_MS
GROUPS, PER_GROUP = 3, 150


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_merging_pays_when_the_deletes_save_more_than_one_rewrite_costs() -> None:
    index = IndexShape(segments=14, pages=100_000)
    rewrite_ms = index.pages * upkeep.MERGE_MS_PER_PAGE
    per_row_saved_ms = (index.segments - 1) * upkeep.DELETE_MS_PER_SEGMENT
    enough = int(rewrite_ms / per_row_saved_ms) + 1
    assert worth_merging(enough, index)
    assert not worth_merging(enough - 1, index)
    assert not worth_merging(10**9, IndexShape(segments=1, pages=100_000))
    assert not worth_merging(10**9, IndexShape(segments=0, pages=0))


@pytest.fixture
async def segmented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[SQLiteStore, Path, list[Stored]]]:
    """A store whose index has one segment for each of GROUPS index transactions (FTS5
    merges a level at four), holding completions minted 40 days before NOW, oldest first.
    The background indexer waits an hour, so only these transactions make segments."""
    monkeypatch.setattr(sqlite_search, "INDEX_INTERVAL_SECONDS", 3600.0)
    path = tmp_path / "chatkeep.db"
    store = SQLiteStore(path)
    await store.upgrade()
    await store.open()
    ids: list[Stored] = []
    for group in range(GROUPS):
        for n in range(PER_GROUP):
            completion = minted_at(NOW - 40 * DAY_MS, group * PER_GROUP + n)
            await store.insert(completion)
            # "say hi to chatcmpl-...": a word no other completion has
            ids.append(Stored(completion.id, completion.messages[0]["content"].split("-")[-1]))
        await store._write(index_pending)
    try:
        yield store, path, ids
    finally:
        await store.close()


def index_shape(path: Path) -> IndexShape:
    with closing(sqlite3.connect(path)) as conn:
        return shape(conn)


async def found(store: SQLiteStore, word: str) -> list[str]:
    page = await store.list("proj", ListQuery(limit=100, search=parse_search(word)))
    return [item["id"] for item in page]


async def test_slices_merge_the_index_into_one_segment_that_finds_every_word(
    segmented: tuple[SQLiteStore, Path, list[Stored]],
) -> None:
    store, path, ids = segmented
    assert index_shape(path).segments == GROUPS
    slices = 0
    while await store._write(lambda conn: merge_slice(conn, 1)):
        slices += 1
    assert slices > 1  # a page a slice: the merge took several write transactions
    assert index_shape(path).segments == 1
    assert not await store._write(lambda conn: merge_slice(conn, 1))
    for stored in ids:
        assert await found(store, stored.word) == [stored.id]


async def test_a_large_purge_merges_first_and_leaves_none_of_the_purged_words(
    segmented: tuple[SQLiteStore, Path, list[Stored]],
) -> None:
    store, path, ids = segmented
    purged, kept = ids[:-2], ids[-2:]
    assert worth_merging(len(purged), index_shape(path))
    cutoff = kept[0].id
    done = await store.purge(lambda _: Cutoffs(content_before=cutoff, records_before=None))
    assert done["proj"].content == len(purged)
    assert index_shape(path).segments == 1
    for stored in kept:
        assert await found(store, stored.word) == [stored.id]
    files = [f.read_bytes() for f in path.parent.glob("chatkeep.db*")]
    assert files
    assert [c for c in purged if any(c.word.encode() in f for f in files)] == []


async def test_a_purge_whose_deletes_cost_less_than_a_rewrite_does_not_merge(
    segmented: tuple[SQLiteStore, Path, list[Stored]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, path, ids = segmented
    monkeypatch.setattr(upkeep, "MERGE_MS_PER_PAGE", 1000.0)
    assert not worth_merging(len(ids), index_shape(path))
    cutoff = completion_id_floor(NOW)
    done = await store.purge(lambda _: Cutoffs(content_before=cutoff, records_before=None))
    assert done["proj"].content == len(ids)
    assert index_shape(path).segments == GROUPS  # emptied by secure deletes, never merged


async def test_the_writer_checkpoints_by_itself_again_after_a_purge_even_a_failed_one(
    segmented: tuple[SQLiteStore, Path, list[Stored]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _, ids = segmented

    async def writer_autocheckpoint() -> int:
        pages: int = await store._write(
            lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        )
        return pages

    cutoff = completion_id_floor(NOW)
    await store.purge(lambda _: Cutoffs(content_before=ids[2].id, records_before=None))
    assert await writer_autocheckpoint() == sqlite_purge.AUTOCHECKPOINT_PAGES

    seen: list[int] = []

    def failing(conn: sqlite3.Connection, project: str, before: str, limit: int) -> int:
        seen.append(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite_purge, "content_batch", failing)
    with pytest.raises(sqlite3.OperationalError):
        await store.purge(lambda _: Cutoffs(content_before=cutoff, records_before=None))
    assert seen and set(seen) == {0}  # off while the purge ran (the writer retries once)
    assert await writer_autocheckpoint() == sqlite_purge.AUTOCHECKPOINT_PAGES


async def test_a_purge_batch_has_fts5_apply_its_deletes_before_it_ends(
    segmented: tuple[SQLiteStore, Path, list[Stored]],
) -> None:
    """FTS5 would apply them when the transaction commits, after the batch was timed, and
    batches sized by that time grew until one held the writer for seconds."""
    store, _, ids = segmented
    index_bytes = "SELECT sum(length(block)) FROM completion_search_data"

    def batch(conn: sqlite3.Connection) -> tuple[int, int, int]:
        before = conn.execute(index_bytes).fetchone()[0]
        done = sqlite_purge.content_batch(conn, "proj", ids[-1].id, 10)
        return done, before, conn.execute(index_bytes).fetchone()[0]

    done, before, after = await store._write(batch)
    assert done == 10
    assert after != before  # in the batch's own transaction, before its commit
