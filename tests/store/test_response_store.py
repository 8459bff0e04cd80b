"""The ResponseStore on both engines: stored by reference, chains walked back in order,
broken by any missing link, scoped to a project; retention by the completions' cutoffs,
with PostgreSQL's week partitions made on demand and dropped whole."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from chatkeep.ids import completion_id_floor
from chatkeep.store import postgres_response_weeks as weeks
from chatkeep.store.base import Cutoffs
from chatkeep.store.factory import MigratableStore, response_store_for
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.responses import ChainBroken, NewResponse, ResponseStore

pytestmark = pytest.mark.anyio
DAY_MS = 86_400_000


def minted(ms: int) -> str:
    """A response id minted at `ms` (Unix milliseconds), as `ResponseIdGenerator` mints."""
    return f"resp_{(ms << 144) | random.getrandbits(144):048x}"


def new_response(
    response_id: str, previous: str | None = None, project: str = "p", *, content: bool = True
) -> NewResponse:
    text = f"said at {response_id}"
    output: list[dict[str, Any]] = [{"id": "msg_1", "type": "message", "role": "assistant",
        "status": "completed", "content": [{"type": "output_text", "text": text}]}]  # fmt: skip
    items: list[dict[str, Any]] = [{"id": "msg_0", "type": "message", "role": "user",
        "status": "completed", "content": [{"type": "input_text", "text": text}]}]  # fmt: skip
    return NewResponse(
        id=response_id,
        project=project,
        model="m",
        created=0,
        previous_response_id=previous,
        metadata={"k": "v"},
        usage={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
        response={"id": response_id, "object": "response", "output": output},
        input_items=items,
        keep_content=content,
    )


@pytest.fixture
def responses(store: MigratableStore) -> ResponseStore:
    return response_store_for(store)


async def test_a_chain_is_walked_back_oldest_first(responses: ResponseStore) -> None:
    now = int(time.time() * 1000)
    a, b, c = minted(now - 3), minted(now - 2), minted(now - 1)
    for made in (new_response(a), new_response(b, a), new_response(c, b)):
        await responses.insert_response(made)
    chain = await responses.chain("p", c)
    assert [turn.id for turn in chain] == [a, b, c]
    assert chain[0].output[0]["content"][0]["text"] == f"said at {a}"
    assert chain[0].input_items[0]["id"] == "msg_0"
    assert [t.id for t in await responses.chain("p", a)] == [a]
    with pytest.raises(ChainBroken) as foreign:
        await responses.chain("q", c)  # another project's
    assert foreign.value.response_id == c
    assert await responses.delete_response("p", a)
    assert not await responses.delete_response("p", a)
    with pytest.raises(ChainBroken) as broken:
        await responses.chain("p", c)
    assert broken.value.response_id == a
    assert await responses.get_response("p", b) is not None
    assert await responses.get_response("q", b) is None
    assert await responses.input_items("p", "resp_\x00") is None


async def test_a_record_without_content_is_never_served(responses: ResponseStore) -> None:
    kept = minted(int(time.time() * 1000))
    await responses.insert_response(new_response(kept, content=False))
    assert await responses.get_response("p", kept) is None
    assert await responses.input_items("p", kept) is None
    assert not await responses.delete_response("p", kept)
    with pytest.raises(ChainBroken):
        await responses.chain("p", kept)


async def test_retention_empties_then_deletes_by_the_policy_cutoffs(
    store: MigratableStore, responses: ResponseStore
) -> None:
    now = int(time.time() * 1000)
    old, middle, new = minted(now - 40 * DAY_MS), minted(now - 10 * DAY_MS), minted(now)
    for made in (new_response(old), new_response(middle, old), new_response(new, middle)):
        await responses.insert_response(made)
    cutoffs = Cutoffs(
        content_before=completion_id_floor(now - 5 * DAY_MS),
        records_before=completion_id_floor(now - 30 * DAY_MS),
    )
    counted = await responses.purge_responses(lambda _: cutoffs, project=None, dry_run=True)
    assert (counted["p"].records, counted["p"].content) == (1, 2)
    assert await responses.get_response("p", old) is not None  # a dry run removes nothing
    if isinstance(store, PostgresStore):
        weeks_before = await store.run(weeks.existing)
        assert weeks.week_of(old) in weeks_before  # made on demand by the insert
    found = await responses.purge_responses(lambda _: cutoffs, project=None, dry_run=False)
    assert (found["p"].records, found["p"].content) == (1, 1)  # `old` went whole
    assert await responses.get_response("p", middle) is None  # content gone
    assert await responses.get_response("p", new) is not None
    with pytest.raises(ChainBroken) as broken:
        await responses.chain("p", new)
    assert broken.value.response_id == middle
    if isinstance(store, PostgresStore):
        remaining = await store.run(weeks.existing)
        assert weeks.week_of(old) not in remaining  # dropped whole, not row by row
        assert weeks.week_of(new) in remaining
    again = await responses.purge_responses(lambda _: cutoffs, project=None, dry_run=False)
    assert (again["p"].records, again["p"].content) == (0, 0)


async def test_a_project_purge_and_forever_keep_other_rows(responses: ResponseStore) -> None:
    now = int(time.time() * 1000)
    mine, theirs = minted(now - 40 * DAY_MS), minted(now - 40 * DAY_MS + 1)
    await responses.insert_response(new_response(mine, project="p"))
    await responses.insert_response(new_response(theirs, project="q"))
    gone = Cutoffs(content_before=completion_id_floor(now), records_before=completion_id_floor(now))
    keep = Cutoffs(content_before=None, records_before=None)
    policies = {"p": gone, "q": keep}
    found = await responses.purge_responses(policies.__getitem__, project=None, dry_run=False)
    assert found["p"].records == 1 and found["q"].records == 0
    assert await responses.get_response("q", theirs) is not None  # its week was not dropped
    assert await responses.get_response("p", mine) is None
