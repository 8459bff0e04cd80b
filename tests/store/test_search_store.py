"""Full-text search on both stores: what is searched, the query syntax, pages in id order
from any cursor, the list's filters alongside, and an index that follows every write."""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any

import pytest

from chatkeep.ids import completion_id_floor
from chatkeep.protocol.queries import ListQuery
from chatkeep.protocol.search import parse_search
from chatkeep.store.base import Cutoffs, NewCompletion
from chatkeep.store.factory import MigratableStore
from tests.store.conftest import RawExecute
from tests.store.test_store_contract import insert_all, new_completion

pytestmark = pytest.mark.anyio


def with_text(
    c: NewCompletion,
    messages: list[dict[str, Any]],
    answer: dict[str, Any] | None = None,
) -> NewCompletion:
    """`c` with these input messages and, when given, this answer message."""
    completion = c.completion
    if answer is not None:
        choice = {**completion["choices"][0], "message": answer}
        completion = {**completion, "choices": [choice]}
    return dataclasses.replace(c, messages=messages, completion=completion)


def said(text: str, **kw: Any) -> NewCompletion:
    """A completion whose one user message says `text`."""
    return with_text(new_completion(**kw), [{"role": "user", "content": text}])


async def found(store: MigratableStore, search: str, project: str = "proj", **kw: Any) -> list[str]:
    query = ListQuery(limit=100, search=parse_search(search), **kw)
    return [item["id"] for item in await store.list(project, query)]


async def walk(store: MigratableStore, search: str, limit: int, **kw: Any) -> list[str]:
    """Every id a client paging with `limit` and `after` would see."""
    seen: list[str] = []
    after = None
    while True:
        query = ListQuery(limit=limit, after=after, search=parse_search(search), **kw)
        page = [item["id"] for item in await store.list("proj", query)]
        seen += page[:limit]
        if len(page) <= limit:
            return seen
        after = page[limit - 1]


def two_choices(c: NewCompletion) -> NewCompletion:
    choices = [
        {"index": n, "message": {"role": "assistant", "content": f"choice {n}"},
         "finish_reason": "stop", "logprobs": None}
        for n in range(2)
    ]  # fmt: skip
    return dataclasses.replace(c, completion={**c.completion, "choices": choices})


def every_kind() -> dict[str, NewCompletion]:
    """Completions with text in every place that is searched, and in some that are not."""
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    made: dict[str, NewCompletion] = {
        "string": with_text(new_completion(), [{"role": "user", "content": "alpha"}]),
        "part": with_text(
            new_completion(),
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "bravo"},
                        {"type": "image_url", "image_url": {"url": "https://x.test/zulu.png"}},
                    ],
                }
            ],
        ),
        "input call": with_text(
            new_completion(),
            [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {**call, "function": {"name": "f", "arguments": '{"c": "charlie"}'}}
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "delta"},
            ],
        ),
        "answer": with_text(
            new_completion(),
            [{"role": "user", "content": "q"}],
            {"role": "assistant", "content": "echo", "refusal": None},
        ),
        "answer call": with_text(
            new_completion(),
            [{"role": "user", "content": "q"}],
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{**call, "function": {"name": "f", "arguments": '["foxtrot"]'}}],
            },
        ),
        "function call": with_text(
            new_completion(metadata={"tag": "yankee"}, model="xray"),
            [
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "golf", "arguments": '{"h": "hotel"}'},
                },
            ],
        ),
        "two choices": two_choices(said("question\u0000 with NUL")),
    }
    return made


async def test_every_kind_of_text_is_searched_and_nothing_else(store: MigratableStore) -> None:
    made = every_kind()
    await insert_all(store, list(made.values()))
    ids = {name: c.id for name, c in made.items()}
    assert await found(store, "choice") == [ids["two choices"]]
    assert await found(store, "NUL") == [ids["two choices"]]
    assert await found(store, "alpha") == [ids["string"]]
    assert await found(store, "bravo") == [ids["part"]]
    assert await found(store, "charlie") == [ids["input call"]]
    assert await found(store, "delta") == [ids["input call"]]
    assert await found(store, "echo") == [ids["answer"]]
    assert await found(store, "foxtrot") == [ids["answer call"]]
    assert await found(store, "hotel") == [ids["function call"]]
    # Image URLs, roles, function names, metadata and models are not text of the conversation.
    for absent in ("zulu", "user", "assistant", "golf", "yankee", "xray", "proj"):
        assert await found(store, absent) == [], absent


async def test_postgres_indexes_new_rows_as_its_migration_indexed_old_ones(
    store: MigratableStore, engine: str, raw_execute: RawExecute
) -> None:
    """The store writes each vector from strings picked in Python; the migration made them
    with the SQL function. They must be the same vectors."""
    if engine != "postgres":
        pytest.skip("PostgreSQL's tsvector column")
    await insert_all(store, list(every_kind().values()))
    rows = await raw_execute(
        "SELECT id, search IS NULL FROM completion_content "
        "WHERE search IS DISTINCT FROM chatkeep_search_vector(messages, completion)"
    )
    assert rows == []
    assert len(await raw_execute("SELECT id FROM completion_content WHERE search <> ''")) == 7


async def test_words_phrases_and_prefixes(store: MigratableStore) -> None:
    quick = said("The quick brown fox; it jumped over the lazy dog.")
    other = said("Brownies are quick to bake. Café au lait.")
    split = with_text(
        new_completion(),
        [{"role": "user", "content": "ends with red"}, {"role": "user", "content": "fox starts"}],
    )
    await insert_all(store, [quick, other, split])
    assert await found(store, "quick") == [quick.id, other.id]
    assert await found(store, "QUICK Brown") == [quick.id]  # every term, any case
    assert await found(store, '"quick brown"') == [quick.id]
    assert await found(store, '"brown quick"') == []
    assert await found(store, "brown*") == [quick.id, other.id]
    assert await found(store, "jump* lazy") == [quick.id]
    assert await found(store, "fox-jumped") == []  # a phrase of two words: not adjacent
    assert await found(store, "lazy-dog") == [quick.id]
    # Accents are kept on both stores, and a phrase never spans two messages.
    assert await found(store, "café") == [other.id]
    assert await found(store, "cafe") == []
    assert await found(store, '"red fox"') == []
    assert await found(store, "red fox") == [split.id]


@pytest.mark.parametrize("limit", [1, 3, 100])
async def test_pages_walk_matches_in_id_order_inserted_in_any_order(
    store: MigratableStore, limit: int
) -> None:
    # Ids of the same ~33 ms interval and of days apart, stored shuffled: the index's
    # order within an interval is the order of storing, the page's is the ids'.
    now = int(time.time() * 1000)
    times = [now - day * 86_400_000 - n for day in (0, 3, 9) for n in range(0, 40, 3)]
    made = [
        said("needle" if n % 3 else "hay", completion_id=completion_id_floor(t))
        for n, t in enumerate(times)
    ]
    random.Random(7).shuffle(made)
    await insert_all(store, made)
    needles = sorted(c.id for c in made if "needle" in c.messages[0]["content"])
    assert await walk(store, "needle", limit) == needles
    assert await walk(store, "needle", limit, order="desc") == needles[::-1]
    middle = needles[len(needles) // 2]
    assert await found(store, "needle", after=middle) == needles[len(needles) // 2 + 1 :]
    assert (
        await found(store, "needle", after=middle, order="desc")
        == needles[: len(needles) // 2][::-1]
    )


async def test_a_deleted_cursor_keeps_its_place(store: MigratableStore) -> None:
    made = [said(f"needle {n}") for n in range(6)]
    await insert_all(store, made)
    assert await store.delete("proj", made[2].id)
    assert await found(store, "needle", after=made[2].id) == [c.id for c in made[3:]]
    assert await found(store, "needle", after=made[2].id, order="desc") == [
        made[1].id,
        made[0].id,
    ]


async def test_search_combines_with_the_list_filters(store: MigratableStore) -> None:
    start = int(time.time()) - 30 * 86_400
    made = [
        said(
            "needle",
            model="a" if n % 2 else "b",
            metadata={"env": "prod" if n < 4 else "dev", "all": "y"},
            completion_id=completion_id_floor((start + n * 3 * 86_400) * 1000 + 500),
        )
        for n in range(8)
    ]
    await insert_all(store, made)
    ids = [c.id for c in made]
    assert await found(store, "needle", model="a") == ids[1::2]
    assert await found(store, "needle", metadata={"env": "prod"}) == ids[:4]
    assert await found(store, "needle", metadata={"env": "prod", "all": "y"}, model="b") == [
        ids[0],
        ids[2],
    ]
    inside = {"created_after": start + 3 * 86_400, "created_before": start + 5 * 3 * 86_400}
    assert await found(store, "needle", **inside) == ids[2:5]
    assert await found(store, "needle", order="desc", **inside) == ids[4:1:-1]
    assert await found(store, "needle", metadata={"env": "nope"}) == []


async def test_projects_never_see_each_others_matches(store: MigratableStore) -> None:
    mine, theirs = said("needle"), said("needle", project="other")
    await insert_all(store, [mine, theirs])
    assert await found(store, "needle") == [mine.id]
    assert await found(store, "needle", project="other") == [theirs.id]


async def test_the_index_follows_delete_and_retention(
    store: MigratableStore, engine: str, raw_execute: RawExecute
) -> None:
    made = [said(f"needle n{n}") for n in range(4)]
    await insert_all(store, made)
    await store.update_metadata("proj", made[0].id, {"k": "v"})
    assert await found(store, "needle") == [c.id for c in made]
    assert await store.delete("proj", made[1].id)
    assert await found(store, "needle") == [made[0].id, made[2].id, made[3].id]
    # Content retention up to the third: its text goes, the record stays.
    cutoff = Cutoffs(content_before=made[3].id, records_before=None)
    await store.purge(lambda project: cutoff)
    assert await found(store, "needle") == [made[3].id]
    assert await found(store, "n0") == []
    if engine == "sqlite":  # the index itself holds nothing more of them
        rows = await raw_execute(
            "SELECT rowid FROM completion_search WHERE completion_search MATCH 'needle'"
        )
    else:
        rows = await raw_execute(
            "SELECT id FROM completion_content WHERE search @@ to_tsquery('simple', 'needle')"
        )
    assert len(rows) == 1


async def test_text_a_jsonb_cannot_hold_is_stored_and_the_rest_found(
    store: MigratableStore,
) -> None:
    # NUL (which orjson writes as `\u0000`) and a backslash before `u0000` come back
    # exactly; the words around them are searchable.
    c = with_text(
        new_completion(),
        [{"role": "user", "content": "before\u0000after \\u0000 lone"}],
        {"role": "assistant", "content": "answer\u0000here", "refusal": None},
    )
    await store.insert(c)
    assert await store.messages("proj", c.id) == c.messages
    assert await found(store, "lone") == [c.id]
    assert await found(store, "answer") == [c.id]


async def test_a_sparse_pair_or_sparse_words_drive_alike(store: MigratableStore) -> None:
    # 150 matches of a common word; a pair on 5 of them, a rarer word on 3 others.
    made = [
        said(
            "needle common" + (" rarest" if n in (10, 70, 130) else ""),
            metadata={"all": "y", **({"user": "rare"} if n % 30 == 7 else {})},
        )
        for n in range(150)
    ]
    await insert_all(store, made)
    ids = [c.id for c in made]
    paired = [ids[n] for n in range(150) if n % 30 == 7]
    assert await walk(store, "needle", 2, metadata={"user": "rare"}) == paired
    assert await walk(store, "needle", 2, metadata={"user": "rare"}, order="desc") == paired[::-1]
    assert await found(store, "needle", metadata={"user": "rare"}, after=paired[1]) == paired[2:]
    rarest = [ids[10], ids[70], ids[130]]
    assert await walk(store, "rarest", 1, metadata={"all": "y"}) == rarest
    assert (
        await walk(store, "rarest common", 2, metadata={"all": "y"}, order="desc") == (rarest[::-1])
    )
    assert await found(store, "needle", metadata={"user": "rare", "all": "y"}) == paired


async def test_a_completion_deleted_before_it_was_indexed_leaves_no_trace(
    store: MigratableStore, engine: str, raw_execute: RawExecute
) -> None:
    gone, kept = said("needle gone"), said("needle kept")
    await insert_all(store, [gone, kept])
    assert await store.delete("proj", gone.id)  # SQLite: still waiting to be indexed
    assert await found(store, "needle") == [kept.id]
    if engine == "sqlite":
        assert await raw_execute("SELECT id FROM completion_search_pending") == []
        hits = "SELECT rowid FROM completion_search WHERE completion_search MATCH $1"
        assert len(await raw_execute(hits, "needle")) == 1
        assert await raw_execute(hits, "gone") == []
