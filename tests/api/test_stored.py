"""Stored completions: retrieve, update, delete and messages, through the official client."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest

SEED = 4944116822809979520
CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "write a haiku about ai", "name": "ada"},
]
ECHO_FIELDS = {
    "request_id", "tool_choice", "seed", "top_p", "temperature", "presence_penalty",
    "frequency_penalty", "input_user", "tools", "response_format", "metadata",
    "service_tier", "system_fingerprint", "usage", "choices", "object", "id", "model", "created",
}  # fmt: skip


def _create(client: openai.OpenAI, **kwargs: object) -> tuple[str, str]:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=CONVERSATION,
        store=True,
        **kwargs,  # type: ignore[arg-type]
    )
    return raw.parse().id, raw.headers["x-request-id"]


def test_retrieve_returns_the_reference_shape(client: openai.OpenAI, http: httpx2.Client) -> None:
    completion_id, request_id = _create(
        client, seed=SEED, user="user-7", metadata={"team": "a"}, temperature=0.5
    )
    raw = http.get(f"/v1/chat/completions/{completion_id}")
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/json"
    assert f'"seed":{SEED}' in raw.text  # exact int64 on the wire, never a float
    stored = raw.json()
    assert set(stored) == ECHO_FIELDS
    assert stored["request_id"] == request_id
    assert stored["seed"] == SEED
    assert stored["temperature"] == 0.5 and stored["top_p"] == 1.0
    assert stored["presence_penalty"] == 0.0 and stored["frequency_penalty"] == 0.0
    assert stored["input_user"] == "user-7"
    assert stored["metadata"] == {"team": "a"}
    assert stored["tools"] is None and stored["tool_choice"] is None
    assert stored["response_format"] is None
    message = stored["choices"][0]["message"]
    assert message["content"] == "write a haiku about ai"
    # Absent, not null: the spec's schema types both as non-nullable (README).
    assert "tool_calls" not in message and "function_call" not in message
    sdk = client.chat.completions.retrieve(completion_id)
    assert sdk.id == completion_id and sdk.metadata == {"team": "a"}
    assert sdk.seed == SEED  # type: ignore[attr-defined]


def test_server_chooses_an_int64_seed_when_none_is_given(client: openai.OpenAI) -> None:
    completion_id, _ = _create(client)
    seed = client.chat.completions.retrieve(completion_id).seed  # type: ignore[attr-defined]
    assert isinstance(seed, int) and 0 <= seed < 2**63


def test_not_stored_means_not_retrievable(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="m", messages=CONVERSATION)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.retrieve(completion.id)
    assert caught.value.body["param"] == "completion_id"  # type: ignore[index]
    assert client.chat.completions.list().data == []


def test_streamed_store_is_retrievable_right_after_done(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m", messages=CONVERSATION, stream=True, store=True, metadata={"s": "1"}
    )
    (completion_id,) = {chunk.id for chunk in stream}  # reads the stream to its end
    stored = client.chat.completions.retrieve(completion_id)
    assert stored.choices[0].message.content == "write a haiku about ai"
    assert stored.usage is not None and stored.usage.completion_tokens > 0
    assert stored.metadata == {"s": "1"}


def test_update_replaces_and_null_clears_metadata(client: openai.OpenAI) -> None:
    completion_id, _ = _create(client, metadata={"a": "1", "b": "2"})
    updated = client.chat.completions.update(completion_id, metadata={"c": "3"})
    assert updated.metadata == {"c": "3"} and updated.id == completion_id
    assert client.chat.completions.retrieve(completion_id).metadata == {"c": "3"}
    cleared = client.chat.completions.update(completion_id, metadata=None)
    assert cleared.metadata == {}
    assert client.chat.completions.retrieve(completion_id).metadata == {}


def test_update_rejects_bad_metadata_and_unknown_ids(client: openai.OpenAI) -> None:
    completion_id, _ = _create(client)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.update(completion_id, metadata={"k": "v" * 513})
    assert caught.value.param == "metadata.k"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.update("chatcmpl-nope", metadata={})


def test_delete_then_every_route_answers_404(client: openai.OpenAI) -> None:
    completion_id, _ = _create(client)
    deleted = client.chat.completions.delete(completion_id)
    assert (deleted.id, deleted.object, deleted.deleted) == (
        completion_id, "chat.completion.deleted", True,
    )  # fmt: skip
    for call in (
        lambda: client.chat.completions.retrieve(completion_id),
        lambda: client.chat.completions.update(completion_id, metadata={"a": "b"}),
        lambda: client.chat.completions.delete(completion_id),
        lambda: client.chat.completions.messages.list(completion_id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert completion_id not in [c.id for c in client.chat.completions.list()]


def test_messages_list_shows_the_input_messages(client: openai.OpenAI, http: httpx2.Client) -> None:
    parts = [
        {"type": "text", "text": "look at "},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "this"},
    ]
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        *CONVERSATION,
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "user", "content": parts},
    ]
    completion = client.chat.completions.create(model="m", messages=messages, store=True)  # type: ignore[arg-type]
    page = http.get(f"/v1/chat/completions/{completion.id}/messages").json()
    assert page["object"] == "list" and page["has_more"] is False
    items = page["data"]
    assert [m["id"] for m in items] == [f"{completion.id}-{i}" for i in range(5)]
    assert [m["role"] for m in items] == ["system", "user", "assistant", "tool", "user"]
    assert items[1] == {
        "id": f"{completion.id}-1", "role": "user", "content": "write a haiku about ai",
        "name": "ada", "content_parts": None, "refusal": None,
    }  # fmt: skip
    assert items[2]["tool_calls"] == [tool_call]
    assert items[3]["tool_call_id"] == "call_1"
    assert items[4]["content"] == "look at this" and items[4]["content_parts"] == parts
    assert (page["first_id"], page["last_id"]) == (items[0]["id"], items[-1]["id"])
    sdk_roles = [m.role for m in client.chat.completions.messages.list(completion.id)]
    assert sdk_roles == ["system", "user", "assistant", "tool", "user"]


def test_messages_pagination_both_orders(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": f"m{i}"} for i in range(7)]
    completion = client.chat.completions.create(model="m", messages=messages, store=True)  # type: ignore[arg-type]
    asc = [m.content for m in client.chat.completions.messages.list(completion.id, limit=2)]
    assert asc == [f"m{i}" for i in range(7)]
    desc = client.chat.completions.messages.list(completion.id, limit=3, order="desc")
    assert [m.content for m in desc] == [f"m{i}" for i in reversed(range(7))]
    first = client.chat.completions.messages.list(completion.id, limit=3)
    assert first.has_more is True and len(first.data) == 3
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.messages.list(completion.id, after="chatcmpl-other-1")
    assert caught.value.param == "after"


def test_stored_object_keeps_tools_and_response_format(client: openai.OpenAI) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    fmt = {"type": "json_object"}
    completion_id, _ = _create(client, tools=[tool], tool_choice="auto", response_format=fmt)
    stored = client.chat.completions.retrieve(completion_id)
    assert stored.tools == [tool]  # type: ignore[attr-defined]
    assert stored.tool_choice == "auto"  # type: ignore[attr-defined]
    assert stored.response_format == fmt  # type: ignore[attr-defined]
    assert json.loads(stored.choices[0].message.content or "") is not None
