"""GET /v1/chat/completions: auto-paging, filters, cursors under concurrent change."""

from __future__ import annotations

import threading

import httpx2
import openai
import pytest


def _store_many(client: openai.OpenAI, count: int, **kwargs: object) -> list[str]:
    ids = []
    for i in range(count):
        completion = client.chat.completions.create(
            model=str(kwargs.get("model", "gpt-4o")),
            messages=[{"role": "user", "content": f"n{i}"}],
            store=True,
            metadata=kwargs.get("metadata"),  # type: ignore[arg-type]
        )
        ids.append(completion.id)
    return ids


def test_auto_paging_over_more_than_100_in_both_orders(client: openai.OpenAI) -> None:
    ids = _store_many(client, 130)
    assert [c.id for c in client.chat.completions.list(limit=100)] == ids
    assert [c.id for c in client.chat.completions.list(order="desc", limit=7)] == ids[::-1]
    assert [c.id for c in client.chat.completions.list()] == ids  # default: asc, 20 a page
    first = client.chat.completions.list()
    assert len(first.data) == 20 and first.has_more is True


def test_list_items_have_the_retrieve_shape(client: openai.OpenAI, http: httpx2.Client) -> None:
    (completion_id,) = _store_many(client, 1, metadata={"a": "b"})
    page = http.get("/v1/chat/completions").json()
    assert page["object"] == "list"
    assert page["first_id"] == page["last_id"] == completion_id and page["has_more"] is False
    assert page["data"][0] == http.get(f"/v1/chat/completions/{completion_id}").json()


def test_a_page_serves_each_objects_current_metadata_as_retrieve_does(
    client: openai.OpenAI, http: httpx2.Client
) -> None:
    """A page passes the stored text through with the metadata map spliced in; one whose
    text names `metadata` (here a tool's parameter) is decoded instead. Both serve the
    map as it is now, and the same object as retrieve."""
    (plain,) = _store_many(client, 1, metadata={"a": "b"})
    tool = {
        "type": "function",
        "function": {
            "name": "tag",
            "parameters": {"type": "object", "properties": {"metadata": {"type": "object"}}},
        },
    }
    named = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "with a tool"}],
        tools=[tool],  # type: ignore[list-item]
        store=True,
        metadata={"a": "b"},
    ).id
    for completion_id in (plain, named):
        client.chat.completions.update(completion_id, metadata={"c": "d"})

    page = http.get("/v1/chat/completions").json()

    assert [item["id"] for item in page["data"]] == [plain, named]
    assert [item["metadata"] for item in page["data"]] == [{"c": "d"}, {"c": "d"}]
    for item in page["data"]:
        assert item == http.get(f"/v1/chat/completions/{item['id']}").json()
    assert page["data"][1]["tools"] == [tool]
    listed = client.chat.completions.list()
    assert [(c.id, c.metadata) for c in listed] == [(plain, {"c": "d"}), (named, {"c": "d"})]


def test_empty_list_has_null_ids(http: httpx2.Client) -> None:
    page = http.get("/v1/chat/completions").json()
    assert page == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_model_and_metadata_filters(client: openai.OpenAI, http: httpx2.Client) -> None:
    both = _store_many(client, 3, model="a", metadata={"env": "prod", "team": "x"})
    prod_only = _store_many(client, 2, model="b", metadata={"env": "prod", "team": "y"})
    _store_many(client, 2, model="a", metadata={"env": "dev", "team": "x"})
    listed = client.chat.completions.list(metadata={"env": "prod", "team": "x"})
    assert [c.id for c in listed] == both
    assert [c.id for c in client.chat.completions.list(model="b")] == prod_only
    by_model_and_meta = client.chat.completions.list(model="a", metadata={"env": "prod"})
    assert [c.id for c in by_model_and_meta] == both
    # Go's client percent-encodes the brackets; the filter must still apply.
    encoded = http.get("/v1/chat/completions?metadata%5Benv%5D=prod&metadata%5Bteam%5D=y")
    assert [c["id"] for c in encoded.json()["data"]] == prod_only
    assert client.chat.completions.list(metadata={"env": "none"}).data == []


@pytest.mark.parametrize(
    ("query", "param"),
    [("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"),
     ("order=up", "order"), ("after=nonsense", "after"), ("metadata=x", "metadata")],
)  # fmt: skip
def test_bad_list_queries(http: httpx2.Client, query: str, param: str) -> None:
    response = http.get(f"/v1/chat/completions?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_a_deleted_after_id_does_not_end_the_walk(client: openai.OpenAI) -> None:
    ids = _store_many(client, 6)
    client.chat.completions.delete(ids[2])
    rest = client.chat.completions.list(after=ids[2])
    assert [c.id for c in rest] == ids[3:]
    older = client.chat.completions.list(after=ids[2], order="desc")
    assert [c.id for c in older] == ids[:2][::-1]


def test_walk_never_skips_nor_repeats_under_concurrent_inserts_and_deletes(
    client: openai.OpenAI, base_url: str
) -> None:
    ids = _store_many(client, 60)
    doomed = set(ids[1::4])

    def churn() -> None:
        with openai.OpenAI(api_key="sk", base_url=f"{base_url}/v1", max_retries=0) as other:
            for completion_id in sorted(doomed):
                other.chat.completions.delete(completion_id)
                other.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "x"}], store=True
                )

    worker = threading.Thread(target=churn)
    seen: list[str] = []
    worker.start()
    for completion in client.chat.completions.list(limit=3):
        seen.append(completion.id)
    worker.join()
    assert len(seen) == len(set(seen)), "an item was repeated"
    survivors = [i for i in ids if i not in doomed]
    assert all(i in seen for i in survivors), "an item that existed throughout was skipped"
    assert seen == sorted(seen)


@pytest.mark.anyio
async def test_async_paging(async_client: openai.AsyncOpenAI) -> None:
    created = []
    for i in range(25):
        c = await async_client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": str(i)}], store=True
        )
        created.append(c.id)
    seen = [c.id async for c in async_client.chat.completions.list(limit=10, order="desc")]
    assert seen == created[::-1]


def test_created_range_through_the_official_client(client: openai.OpenAI) -> None:
    """chatkeep's `created_after` / `created_before` extensions, via `extra_query`."""
    ids = _store_many(client, 3)
    created = client.chat.completions.retrieve(ids[0]).created

    def listed(**query: int) -> list[str]:
        page = client.chat.completions.list(limit=100, extra_query=query)
        return [c.id for c in page.data]

    assert listed(created_after=created - 1, created_before=created + 60) == ids
    assert listed(created_after=created + 60) == []
    assert listed(created_before=created) == []
    assert listed(created_after=0) == ids


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ({"created_after": "yesterday"}, "created_after", "invalid_type"),
        ({"created_after": "1.5"}, "created_after", "invalid_type"),
        ({"created_after": ""}, "created_after", "invalid_type"),
        ({"created_before": "-1"}, "created_before", "invalid_value"),
        ({"created_before": str(10**11 + 1)}, "created_before", "invalid_value"),
        ({"created_before": "9" * 400}, "created_before", "invalid_value"),
    ],
)
def test_bad_created_bounds_are_400s_naming_the_parameter(
    client: openai.OpenAI, query: dict[str, str], param: str, code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.list(extra_query=query)
    error = info.value.body
    assert isinstance(error, dict)
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
