"""Imported completions' original ids (`store.imports`) on both stores: stored with the
completion in one write, refused twice, and gone with the completion's record."""

from __future__ import annotations

import dataclasses

import pytest

from chatkeep.ids import completion_id_floor
from chatkeep.protocol.queries import ListQuery
from chatkeep.store.base import Cutoffs
from chatkeep.store.factory import MigratableStore
from chatkeep.store.imports import AliasPresence
from chatkeep.store.schema import CompletionExistsError
from tests.store.test_store_contract import new_completion

pytestmark = pytest.mark.anyio
ORIGINAL = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"


async def test_an_alias_names_its_completion_until_it_is_deleted(store: MigratableStore) -> None:
    c = dataclasses.replace(new_completion(), alias=ORIGINAL)
    await store.insert(c)
    assert await store.alias_of("proj", ORIGINAL) == c.id
    assert await store.alias_of("other", ORIGINAL) is None
    # A second completion under the same original id is refused, and nothing of it kept.
    twin = dataclasses.replace(new_completion(), alias=ORIGINAL)
    with pytest.raises(CompletionExistsError):
        await store.insert(twin)
    assert await store.get("proj", twin.id) is None
    # A list cursor may be the original id: the page goes on from the completion's place.
    later = new_completion()
    await store.insert(later)
    page = await store.list("proj", ListQuery(after=ORIGINAL))
    assert [item["id"] for item in page] == [later.id]
    assert await store.delete("proj", c.id)
    assert await store.alias_of("proj", ORIGINAL) is None


async def test_record_retention_takes_the_alias_too(store: MigratableStore) -> None:
    c = dataclasses.replace(new_completion(), alias=ORIGINAL)
    await store.insert(c)
    content_only = Cutoffs(content_before=completion_id_floor(2**46), records_before=None)
    await store.purge(lambda project: content_only)
    assert await store.alias_of("proj", ORIGINAL) == c.id  # the record is still there
    everything = Cutoffs(completion_id_floor(2**46), completion_id_floor(2**46))
    await store.purge(lambda project: everything)
    assert await store.alias_of("proj", ORIGINAL) is None


async def test_import_checkpoints_are_kept_per_source_and_project(store: MigratableStore) -> None:
    assert await store.import_checkpoint("https://a/v1", "p") is None
    await store.save_import_checkpoint("https://a/v1", "p", "chatcmpl-1")
    await store.save_import_checkpoint("https://a/v1", "p", "chatcmpl-2")
    await store.save_import_checkpoint("https://b/v1", "p", "chatcmpl-9")
    assert await store.import_checkpoint("https://a/v1", "p") == "chatcmpl-2"
    assert await store.import_checkpoint("https://a/v1", "q") is None


async def test_alias_presence_is_read_at_most_once_a_max_age() -> None:
    now = [0.0]
    reads: list[bool] = []
    answer = [False]

    async def read() -> bool:
        reads.append(answer[0])
        return answer[0]

    presence = AliasPresence(max_age=1.0, clock=lambda: now[0])
    assert await presence.exist(read) is False and len(reads) == 1
    answer[0] = True  # another server's import
    now[0] = 0.5
    assert await presence.exist(read) is False and len(reads) == 1  # within the max age
    now[0] = 1.6
    assert await presence.exist(read) is True and len(reads) == 2
    answer[0] = False  # retention took every alias
    now[0] = 3.0
    assert await presence.exist(read) is False
    presence.added()  # this store wrote one: known at once
    assert await presence.exist(read) is True and len(reads) == 3
