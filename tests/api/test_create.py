"""POST /v1/chat/completions through the official client: plain, streamed, echo behaviours."""

from __future__ import annotations

import json
import re

import httpx2
import jsonschema
import openai
import pytest

USER = [{"role": "user", "content": "Hello there, chatkeep!"}]


def test_plain_create_has_the_shape_the_sdk_expects(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
    completion = raw.parse()
    assert re.fullmatch(r"req_[0-9a-f]{32}", raw.headers["x-request-id"])
    assert raw.headers["content-type"] == "application/json"
    assert re.fullmatch(r"chatcmpl-[0-9A-Za-z]{29}", completion.id)
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.content == "Hello there, chatkeep!"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    body = json.loads(raw.content)
    assert body["choices"][0]["logprobs"] is None
    assert body["choices"][0]["message"]["refusal"] is None


def test_streamed_create_is_parsed_by_the_sdk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert len({chunk.id for chunk in chunks}) == 1
    assert len({chunk.created for chunk in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, chatkeep!"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_sends_no_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="m", messages=USER, stream=True))
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


def test_stream_helper_accumulates_the_completion(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="m", messages=USER) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello there, chatkeep!"


def test_sse_framing_is_data_only_and_ends_with_done(http: httpx2.Client) -> None:
    response = http.post(
        "/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True}
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(event.startswith("data: ") for event in events[:-1])
    assert "event:" not in response.text and '"error"' not in response.text


def test_n_stop_and_max_tokens(client: openai.OpenAI) -> None:
    many = client.chat.completions.create(model="m", messages=USER, n=3)
    assert [c.index for c in many.choices] == [0, 1, 2]
    stopped = client.chat.completions.create(model="m", messages=USER, stop=[",", "!"])
    assert stopped.choices[0].message.content == "Hello there"
    assert stopped.choices[0].finish_reason == "stop"
    cut = client.chat.completions.create(model="m", messages=USER, max_completion_tokens=2)
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None and cut.usage.completion_tokens == 2
    assert "Hello there, chatkeep!".startswith(cut.choices[0].message.content or "-")


def test_logprobs(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="m", messages=USER, logprobs=True, top_logprobs=2
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert "".join(t.token for t in logprobs.content) == "Hello there, chatkeep!"
    assert all(len(t.top_logprobs) == 2 for t in logprobs.content)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
        },
    },
}


def test_forced_tool_call_has_arguments_valid_for_the_schema(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="m", messages=USER, tools=[WEATHER_TOOL], tool_choice="required"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    jsonschema.validate(arguments, WEATHER_TOOL["function"]["parameters"])  # type: ignore[index]


def test_streamed_tool_call_matches_the_sdk_accumulation(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="m",
        messages=USER,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_TOOL["function"]["parameters"])  # type: ignore[index,union-attr]


def test_json_schema_response_format_parses(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "score": {"type": "number"}},
        "required": ["answer", "score"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model="m",
        messages=USER,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": schema, "strict": True},
        },
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), schema)
    obj = client.chat.completions.create(
        model="m", messages=USER, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(obj.choices[0].message.content or ""), dict)


def test_unknown_top_level_fields_are_accepted(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="m", messages=USER, extra_body={"top_k": 5, "chat_template_kwargs": {"x": 1}}
    )
    assert completion.choices[0].message.content == "Hello there, chatkeep!"


@pytest.mark.anyio
async def test_async_client_plain_and_streamed(async_client: openai.AsyncOpenAI) -> None:
    completion = await async_client.chat.completions.create(model="m", messages=USER)
    assert completion.choices[0].message.content == "Hello there, chatkeep!"
    stream = await async_client.chat.completions.create(model="m", messages=USER, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello there, chatkeep!"


def test_models_endpoints(client: openai.OpenAI) -> None:
    listed = client.models.list()
    assert [m.id for m in listed.data]
    assert client.models.retrieve("any-model-name").id == "any-model-name"


def test_nul_in_message_content_round_trips(client: openai.OpenAI) -> None:
    # Message content is stored as JSON, which keeps U+0000 on SQLite and PostgreSQL alike.
    messages = [{"role": "user", "content": "before\x00after", "name": "nul"}]
    completion = client.chat.completions.create(model="m", messages=messages, store=True)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "before\x00after"
    stored = client.chat.completions.messages.list(completion.id).data
    assert [(m.role, m.content, m.name) for m in stored] == [("user", "before\x00after", "nul")]  # type: ignore[attr-defined]
    answer = client.chat.completions.retrieve(completion.id).choices[0].message.content
    assert answer == "before\x00after"
