"""The Responses API answered by an OpenAI-compatible upstream: the Chat Completions call it
receives, its answer (a tool call, usage, its model name) as a Response, its streamed chunks
as typed events, and its failures before and after a stream began."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from tests.backends.conftest import chatkeep_with_config
from tests.backends.fault_upstream import USAGE, FaultUpstream

pytestmark = pytest.mark.anyio
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
async def chatkeep(tmp_path: Path, upstream: FaultUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    toml = f'default = "fault"\n\n[upstreams.fault]\nbase_url = "{upstream.base_url}"\n'
    async with chatkeep_with_config(tmp_path, toml) as client:
        yield client


async def test_a_response_is_one_chat_call_and_its_answer(
    chatkeep: openai.AsyncOpenAI, upstream: FaultUpstream
) -> None:
    created = await chatkeep.responses.create(
        model="ok",
        instructions="Use tools.",
        input="Weather in Oslo?",
        tools=[WEATHER],  # type: ignore[list-item]
        max_output_tokens=64,
        text={"format": {"type": "json_object"}},
        temperature=0.3,
    )
    (sent,) = upstream.bodies
    assert sent["messages"] == [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather in Oslo?"},
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": WEATHER["parameters"]},
        }
    ]
    assert sent["max_completion_tokens"] == 64 and sent["temperature"] == 0.3
    assert sent["response_format"] == {"type": "json_object"}
    assert not {"input", "instructions", "max_output_tokens", "text", "store"} & set(sent)
    (call,) = created.output
    assert call.type == "function_call" and call.call_id == "call_upstream1"
    assert json.loads(call.arguments) == {"city": "Oslo"}
    assert created.model == "ok-2024"  # the model's own name for itself, as OpenAI's
    assert created.usage is not None
    assert (created.usage.input_tokens, created.usage.output_tokens) == (
        USAGE["prompt_tokens"],
        USAGE["completion_tokens"],
    )
    follow = await chatkeep.responses.create(
        model="ok",
        previous_response_id=created.id,
        input=[{"type": "function_call_output", "call_id": "call_upstream1", "output": "-3C"}],
    )
    assert upstream.bodies[1]["messages"] == [
        {"role": "user", "content": "Weather in Oslo?"},  # this call's instructions: none
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_upstream1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_upstream1", "content": "-3C"},
    ]
    assert follow.previous_response_id == created.id


async def test_a_streamed_upstream_answer_becomes_typed_events(
    chatkeep: openai.AsyncOpenAI, upstream: FaultUpstream
) -> None:
    async with chatkeep.responses.stream(model="trickle", input="hi") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert deltas == ["Hel", "lo"]  # relayed as they came, not all at once
    assert final.output_text == "Hello" and final.usage is not None
    assert final.usage.total_tokens == USAGE["total_tokens"]  # asked for, though not by the client
    assert upstream.bodies[0]["stream_options"] == {"include_usage": True}
    stored = await chatkeep.responses.retrieve(final.id)
    assert stored.output_text == "Hello"


async def test_upstream_failures_reach_the_client_and_store_nothing(
    chatkeep: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await chatkeep.responses.create(model="status-400", input="hi")
    assert refused.value.status_code == 400
    events = [
        e
        async for e in await chatkeep.responses.create(model="stream-error", input="x", stream=True)
    ]
    assert events[0].type == "response.created"
    assert events[-1].type == "error"
    created_id = events[0].response.id  # type: ignore[union-attr]
    with pytest.raises(openai.NotFoundError):
        await chatkeep.responses.retrieve(created_id)
