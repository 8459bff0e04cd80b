"""Hostile text in every stored and filtered field, on every engine, with the same answers.

U+0000 cannot live in PostgreSQL's `text`, and a lone surrogate is not UTF-8: a write that
puts either into a text column is a 400 naming the field, with nothing stored; a lookup or
filter by either finds nothing. 4-byte characters, and U+0000 inside JSON columns (message
content, the completion's answer), round-trip exactly.
"""

from __future__ import annotations

import dataclasses

import pytest

from chatkeep.errors import InvalidRequestError
from chatkeep.protocol.queries import ListQuery
from chatkeep.store.factory import MigratableStore
from tests.store.test_store_contract import new_completion, served

pytestmark = pytest.mark.anyio

NUL = "a\x00b"
SURROGATE = "a\ud800b"
FOUR_BYTES = "𝄞 🌍 𠜎"
HOSTILE = [pytest.param(NUL, id="nul"), pytest.param(SURROGATE, id="lone-surrogate")]


async def test_four_byte_characters_round_trip_in_every_field(store: MigratableStore) -> None:
    c = new_completion(project=f"p{FOUR_BYTES}", model=f"m{FOUR_BYTES}")
    c = dataclasses.replace(
        c,
        metadata={f"k{FOUR_BYTES}": f"v{FOUR_BYTES}"},
        messages=[{"role": "user", "content": FOUR_BYTES}],
    )
    await store.insert(c)
    assert await store.get(c.project, c.id) == served(c)
    assert await store.messages(c.project, c.id) == c.messages
    by_model = await store.list(c.project, ListQuery(model=c.model))
    by_pair = await store.list(c.project, ListQuery(metadata=c.metadata))
    assert [row["id"] for row in by_model] == [row["id"] for row in by_pair] == [c.id]


async def test_nul_in_json_columns_round_trips(store: MigratableStore) -> None:
    c = new_completion()
    c.completion["choices"][0]["message"]["content"] = NUL
    c = dataclasses.replace(c, messages=[{"role": "user", "content": NUL, "name": NUL}])
    await store.insert(c)
    assert await store.get(c.project, c.id) == served(c)
    assert await store.messages(c.project, c.id) == c.messages


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("model", lambda c, t: dataclasses.replace(c, model=t)),
        ("metadata", lambda c, t: dataclasses.replace(c, metadata={t: "v"})),
        ("metadata", lambda c, t: dataclasses.replace(c, metadata={"k": t})),
        ("completion_id", lambda c, t: dataclasses.replace(c, id=c.id + t)),
        ("completion_id", lambda c, t: dataclasses.replace(c, project=t)),
    ],
    ids=["model", "metadata-key", "metadata-value", "id", "project"],
)
async def test_unkeepable_text_column_is_refused_and_nothing_stored(
    store: MigratableStore, text: str, field: str, change: object
) -> None:
    c = change(new_completion(), text)  # type: ignore[operator]
    with pytest.raises(InvalidRequestError) as raised:
        await store.insert(c)
    assert raised.value.status_code == 400
    assert raised.value.param == field
    assert await store.list("proj", ListQuery()) == []


async def test_lone_surrogate_in_json_columns_is_refused(store: MigratableStore) -> None:
    c = new_completion()
    bad_messages = dataclasses.replace(c, messages=[{"role": "user", "content": SURROGATE}])
    with pytest.raises(InvalidRequestError) as raised:
        await store.insert(bad_messages)
    assert raised.value.param == "messages"
    c.completion["choices"][0]["message"]["content"] = SURROGATE
    with pytest.raises(InvalidRequestError) as raised:
        await store.insert(c)
    assert raised.value.param == "completion"
    assert await store.list("proj", ListQuery()) == []


@pytest.mark.parametrize("text", HOSTILE)
async def test_unkeepable_metadata_update_is_refused_and_nothing_changes(
    store: MigratableStore, text: str
) -> None:
    c = new_completion(metadata={"team": "a"})
    await store.insert(c)
    for metadata in ({text: "v"}, {"k": text}):
        with pytest.raises(InvalidRequestError) as raised:
            await store.update_metadata(c.project, c.id, metadata)
        assert raised.value.param == "metadata"
    assert await store.get(c.project, c.id) == served(c)
    assert len(await store.list(c.project, ListQuery(metadata={"team": "a"}))) == 1


@pytest.mark.parametrize("text", HOSTILE)
async def test_lookups_by_unkeepable_text_find_nothing(store: MigratableStore, text: str) -> None:
    c = new_completion(metadata={"k": "v"})
    await store.insert(c)
    for project, completion_id in ((c.project, c.id + text), (c.project + text, c.id)):
        assert await store.get(project, completion_id) is None
        assert await store.messages(project, completion_id) is None
        assert await store.update_metadata(project, completion_id, {"x": "y"}) is None
        assert await store.delete(project, completion_id) is False
    assert await store.list(c.project + text, ListQuery()) == []
    assert await store.get(c.project, c.id) == served(c)  # untouched by any of it


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize(
    "query",
    [
        lambda t: ListQuery(model=t),
        lambda t: ListQuery(metadata={t: "v"}),
        lambda t: ListQuery(metadata={"k": t}),
        lambda t: ListQuery(metadata={"k": "v", "j": t}),
    ],
    ids=["model", "metadata-key", "metadata-value", "second-pair"],
)
async def test_filters_by_unkeepable_text_match_nothing(
    store: MigratableStore, text: str, query: object
) -> None:
    await store.insert(new_completion(metadata={"k": "v", "j": "w"}))
    assert await store.list("proj", query(text)) == []  # type: ignore[operator]
