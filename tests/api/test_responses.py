"""The Responses API through the official client, on both stores: create (plain and
streamed), retrieve, delete, input items, `previous_response_id` chains and tool loops."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2
import openai
import pytest

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
FORCE_WEATHER: Any = {"type": "function", "name": "get_weather"}
LONG = " ".join(f"word{i}" for i in range(40))


def test_create_answers_and_retrieve_returns_it_exactly(
    client: openai.OpenAI, http: httpx2.Client
) -> None:
    created = client.responses.create(
        model="gpt-4o",
        input="Tell me a story",
        instructions="Be brief.",
        metadata={"team": "a"},
        temperature=0.5,
        user="user-7",
    )
    assert re.fullmatch(r"resp_[0-9a-f]{48}", created.id)
    assert created.object == "response" and created.status == "completed"
    assert created.output_text == "Tell me a story"  # the echo model
    assert created.instructions == "Be brief." and created.metadata == {"team": "a"}
    assert created.temperature == 0.5 and created.user == "user-7"
    assert created.store is True and created.previous_response_id is None
    assert created.usage is not None and created.usage.output_tokens > 0
    assert created.usage.total_tokens == created.usage.input_tokens + created.usage.output_tokens
    assert created.completed_at is not None and created.completed_at >= created.created_at
    raw = http.get(f"/v1/responses/{created.id}")
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/json"
    assert raw.json() == created.model_dump(mode="json", exclude_unset=True)
    assert client.responses.retrieve(created.id).output_text == "Tell me a story"


def test_store_false_is_answered_but_never_kept(client: openai.OpenAI) -> None:
    created = client.responses.create(model="m", input="not kept", store=False)
    assert created.output_text == "not kept" and created.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="m", input="next", previous_response_id=created.id)
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"  # type: ignore[attr-defined]


def test_a_tool_loop_continues_through_previous_response_id(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model="m", input="Paris", tools=[WEATHER], tool_choice=FORCE_WEATHER
    )
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments)["city"] == "Paris"
    assert call.call_id.startswith("call_") and call.id is not None
    second = client.responses.create(
        model="m",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],
    )
    # The echo model answers the last user message it sees: the first call's, which only the
    # stored chain holds.
    assert second.output_text == "Paris"
    assert second.previous_response_id == first.id
    third = client.responses.create(model="m", previous_response_id=second.id, input="thanks")
    assert third.output_text == "thanks"
    # Each response lists its own call's inputs only: the chain is stored by reference.
    items = client.responses.input_items.list(second.id).data
    assert [item.type for item in items] == ["function_call_output"]
    assert items[0].call_id == call.call_id  # type: ignore[union-attr]
    # The chain reaches the model in order: its prompt grows with every turn.
    assert first.usage and second.usage and third.usage
    assert first.usage.input_tokens < second.usage.input_tokens < third.usage.input_tokens


def test_a_chain_through_a_deleted_response_is_not_found(client: openai.OpenAI) -> None:
    first = client.responses.create(model="m", input="one")
    second = client.responses.create(model="m", input="two", previous_response_id=first.id)
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(first.id)
    assert client.responses.retrieve(second.id).output_text == "two"  # still stored
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="m", input="three", previous_response_id=second.id)
    assert caught.value.code == "previous_response_not_found"
    assert second.id in caught.value.message and first.id in caught.value.message


def test_delete_answers_the_deleted_object(http: httpx2.Client) -> None:
    created = http.post("/v1/responses", json={"model": "m", "input": "x"}).json()
    deleted = http.delete(f"/v1/responses/{created['id']}")
    assert deleted.json() == {"id": created["id"], "object": "response", "deleted": True}
    assert http.delete(f"/v1/responses/{created['id']}").status_code == 404


def test_input_items_page_with_after_limit_and_order(client: openai.OpenAI) -> None:
    created = client.responses.create(
        model="m",
        input=[
            {"role": "developer", "content": "d"},
            {"role": "user", "content": [{"type": "input_text", "text": "u1"}]},
            {"role": "assistant", "content": "a"},
            {"type": "message", "role": "user", "content": "u2"},
        ],
    )
    newest_first = client.responses.input_items.list(created.id)
    texts = [item.content[0].text for item in newest_first.data]  # type: ignore[union-attr]
    assert texts == ["u2", "a", "u1", "d"]  # `desc` unless asked: OpenAI's default
    oldest = client.responses.input_items.list(created.id, order="asc", limit=2)
    assert [i.role for i in oldest.data] == ["developer", "user"]  # type: ignore[union-attr]
    assert oldest.has_more is True
    rest = client.responses.input_items.list(created.id, order="asc", after=oldest.data[1].id)
    assert [i.role for i in rest.data] == ["assistant", "user"]  # type: ignore[union-attr]
    assert rest.has_more is False
    walked = list(client.responses.input_items.list(created.id, limit=1))  # auto-paging
    assert [item.id for item in walked] == [item.id for item in newest_first.data]
    assert newest_first.data[1].content[0].type == "output_text"  # type: ignore[union-attr]


def test_output_items_sent_back_as_input_keep_their_ids(client: openai.OpenAI) -> None:
    first = client.responses.create(model="m", input="hi", store=False)
    echoed: Any = [
        {"role": "user", "content": "hi"},
        *first.output,
        {"role": "user", "content": "again"},
    ]
    second = client.responses.create(model="m", input=echoed)
    items = client.responses.input_items.list(second.id, order="asc").data
    assert items[1].id == first.output[0].id
    assert second.output_text == "again"


def test_max_output_tokens_makes_an_incomplete_response(client: openai.OpenAI) -> None:
    cut = client.responses.create(model="m", input=LONG, max_output_tokens=16)
    assert cut.status == "incomplete"
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert cut.usage is not None and cut.usage.output_tokens == 16
    assert cut.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert client.responses.retrieve(cut.id).status == "incomplete"


def test_text_format_json_schema_and_json_object(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    shaped = client.responses.create(
        model="m",
        input="42",
        text={
            "format": {"type": "json_schema", "name": "result", "schema": schema, "strict": True}
        },
    )
    assert set(json.loads(shaped.output_text)) == {"answer"}
    assert shaped.text is not None and shaped.text.format is not None
    assert shaped.text.format.type == "json_schema"
    plain_json = client.responses.create(
        model="m", input="hi", text={"format": {"type": "json_object"}}
    )
    assert json.loads(plain_json.output_text) == {"echo": "hi"}


def test_stream_helper_gets_typed_events_in_order(client: openai.OpenAI) -> None:
    with client.responses.stream(model="m", input="stream me please") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "stream me please" == final.output_text
    stored = client.responses.retrieve(final.id)  # stored before `response.completed`
    assert stored.model_dump() == final.model_dump(
        exclude={"output": {0: {"content": {0: {"parsed"}}}}}
    )


def test_streamed_function_call_and_its_continuation(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="m", input="Oslo", tools=[WEATHER], tool_choice="required", stream=True
        )
    )
    kinds = [event.type for event in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == {"city": "Oslo"} and done.name == "get_weather"
    completed = events[-1]
    assert completed.type == "response.completed"
    (call,) = completed.response.output
    assert call.type == "function_call"
    follow = client.responses.create(
        model="m",
        previous_response_id=completed.response.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "cold"}],
        stream=True,
    )
    last = list(follow)[-1]
    assert last.type == "response.completed" and last.response.output_text == "Oslo"


def test_a_stream_cut_by_max_output_tokens_ends_incomplete(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="m", input=LONG, max_output_tokens=16, stream=True))
    assert events[-1].type == "response.incomplete"
    response = events[-1].response
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert client.responses.retrieve(response.id).status == "incomplete"


@pytest.mark.anyio
async def test_async_client_in_process(async_client: openai.AsyncOpenAI) -> None:
    created = await async_client.responses.create(model="m", input="in process")
    assert (await async_client.responses.retrieve(created.id)).output_text == "in process"
    async with async_client.responses.stream(
        model="m", input="and streamed", previous_response_id=created.id
    ) as stream:
        final = await stream.get_final_response()
    assert final.output_text == "and streamed"
    page = await async_client.responses.input_items.list(final.id)
    assert [item.type for item in page.data] == ["message"]
    await async_client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        await async_client.responses.retrieve(created.id)


def test_input_images_are_kept_as_input_items(client: openai.OpenAI) -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    created = client.responses.create(
        model="m",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this?"},
                    {"type": "input_image", "image_url": image, "detail": "low"},
                ],
            }
        ],
    )
    assert created.output_text == "what is this?"
    (item,) = client.responses.input_items.list(created.id).data
    assert item.content[1].image_url == image  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_one_log_line_per_response_without_content(
    async_client: openai.AsyncOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="chatkeep")
    secret = "a-private-sentence-that-must-not-be-logged"
    created = await async_client.responses.create(model="m", input=secret, instructions=secret)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("response ")]
    assert len(lines) == 1
    assert f"id={created.id}" in lines[0] and "stored=True status=completed" in lines[0]
    assert not [r for r in caplog.records if secret in r.getMessage()]
