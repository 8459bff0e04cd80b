"""The stream accumulator: the stored completion is exactly what the chunks add up to."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any, cast

import pytest

from chatkeep.backends.base import BackendRequest
from chatkeep.backends.echo import EchoBackend
from chatkeep.protocol.requests import CreateChatCompletionRequest
from chatkeep.protocol.responses import ChatCompletionChunk
from chatkeep.service.stream_accumulator import ChatCompletionAccumulator

USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


def chunk(*choices: dict[str, Any], **top: Any) -> ChatCompletionChunk:
    value = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-2024-08-06",
        "choices": list(choices),
        **top,
    }
    return cast(ChatCompletionChunk, value)


def delta(index: int = 0, finish: str | None = None, logprobs: Any = None, **d: Any) -> Any:
    return {"index": index, "delta": d, "logprobs": logprobs, "finish_reason": finish}


def accumulate(*chunks: ChatCompletionChunk) -> dict[str, Any]:
    accumulator = ChatCompletionAccumulator()
    for c in chunks:
        accumulator.add(c)
    return cast(dict[str, Any], accumulator.result())


def test_text_stream_with_usage_chunk() -> None:
    result = accumulate(
        chunk(delta(role="assistant", content="", refusal=None), system_fingerprint="fp_1"),
        chunk(delta(content="Hello"), usage=None, service_tier="default"),
        chunk(delta(content=" there"), usage=None),
        chunk(delta(finish="stop"), usage=None),
        chunk(usage=USAGE),
    )
    assert result == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello there",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_1",
    }


def test_several_choices_interleaved_come_out_in_index_order() -> None:
    result = accumulate(
        chunk(delta(1, role="assistant", content="B")),
        chunk(delta(0, role="assistant", content="A")),
        chunk(delta(1, content="b"), delta(0, content="a")),
        chunk(delta(0, finish="length")),
        chunk(delta(1, finish="stop")),
    )
    texts = [(c["index"], c["message"]["content"], c["finish_reason"]) for c in result["choices"]]
    assert texts == [(0, "Aa", "length"), (1, "Bb", "stop")]


def test_parallel_tool_calls_are_merged_by_index() -> None:
    def call(i: int, **fields: Any) -> dict[str, Any]:
        return {"index": i, **fields}

    result = accumulate(
        chunk(delta(role="assistant", content=None)),
        chunk(
            delta(
                tool_calls=[
                    call(0, id="call_a", type="function", function={"name": "f", "arguments": ""})
                ]
            )
        ),
        chunk(delta(tool_calls=[call(0, function={"arguments": '{"x":'})])),
        chunk(
            delta(
                tool_calls=[
                    call(1, id="call_b", type="function", function={"name": "g", "arguments": ""})
                ]
            )
        ),
        chunk(delta(tool_calls=[call(1, function={"arguments": "{}"})])),
        chunk(delta(tool_calls=[call(0, function={"arguments": " 1}"})])),
        chunk(delta(finish="tool_calls")),
    )
    message = result["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
        {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]
    assert result["choices"][0]["finish_reason"] == "tool_calls"


def test_refusal_and_its_logprobs() -> None:
    token = {"token": "No", "logprob": -0.5, "bytes": [78, 111], "top_logprobs": []}
    result = accumulate(
        chunk(delta(role="assistant", refusal="", logprobs={"content": None, "refusal": []})),
        chunk(delta(refusal="No", logprobs={"content": None, "refusal": [token]})),
        chunk(delta(refusal=".", logprobs={"content": None, "refusal": [token]})),
        chunk(delta(finish="stop")),
    )
    choice = result["choices"][0]
    assert choice["message"]["refusal"] == "No."
    assert choice["message"]["content"] is None
    assert choice["logprobs"] == {"content": None, "refusal": [token, token]}


def test_content_logprobs_are_concatenated() -> None:
    first = {"token": "a", "logprob": 0.0, "bytes": [97], "top_logprobs": []}
    second = {"token": "b", "logprob": -1.0, "bytes": [98], "top_logprobs": []}
    result = accumulate(
        chunk(delta(content="a", logprobs={"content": [first], "refusal": None})),
        chunk(delta(content="b", logprobs={"content": [second], "refusal": None})),
    )
    assert result["choices"][0]["logprobs"] == {"content": [first, second], "refusal": None}


def test_deprecated_function_call_deltas() -> None:
    result = accumulate(
        chunk(delta(role="assistant", function_call={"name": "lookup", "arguments": ""})),
        chunk(delta(function_call={"arguments": '{"q":'})),
        chunk(delta(function_call={"arguments": '"x"}'})),
        chunk(delta(finish="function_call")),
    )
    message = result["choices"][0]["message"]
    assert message["function_call"] == {"name": "lookup", "arguments": '{"q":"x"}'}


def test_vendor_fields_are_kept_and_obfuscation_dropped() -> None:
    result = accumulate(
        chunk(delta(role="assistant", reasoning_content="Let me "), obfuscation="xyz"),
        chunk(delta(reasoning_content="think.")),
        chunk(delta(content="42")),
        chunk({**delta(finish="stop"), "stop_reason": None}),
    )
    assert "obfuscation" not in result
    message = result["choices"][0]["message"]
    assert message["reasoning_content"] == "Let me think."
    assert message["content"] == "42"


def test_chunks_are_not_modified() -> None:
    chunks = [
        chunk(delta(tool_calls=[{"index": 0, "id": "c", "function": {"arguments": "{"}}])),
        chunk(delta(tool_calls=[{"index": 0, "function": {"arguments": "}"}}])),
    ]
    before = copy.deepcopy(chunks)
    accumulate(*chunks)
    assert chunks == before


def _echo_request(body: dict[str, Any]) -> BackendRequest:
    return BackendRequest(
        params=CreateChatCompletionRequest.model_construct(**body),
        body=body,
        completion_id="chatcmpl-echo",
        created=1_700_000_000,
        include_usage=True,
    )


def _without_call_ids(completion: dict[str, Any]) -> dict[str, Any]:
    completion = copy.deepcopy(completion)
    for choice in completion["choices"]:
        for call in choice["message"].get("tool_calls") or []:
            call["id"] = "call_x"
    return completion


WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    "extra",
    [
        {"n": 2, "logprobs": True, "top_logprobs": 2},
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "weather"}}},
        {
            "tools": [{"type": "custom", "custom": {"name": "shell"}}],
            "tool_choice": {"type": "custom", "custom": {"name": "shell"}},
        },
        {"functions": [{"name": "lookup"}], "function_call": {"name": "lookup"}},
    ],
    ids=["text-n2-logprobs", "tool-call", "custom-tool", "function-call"],
)
@pytest.mark.anyio
async def test_echo_stream_adds_up_to_echo_create(extra: dict[str, Any]) -> None:
    echo = EchoBackend()
    request = _echo_request(
        {"model": "echo", "messages": [{"role": "user", "content": "say hi there"}], **extra}
    )
    created = cast(dict[str, Any], await echo.create(request))
    accumulator = ChatCompletionAccumulator()
    async for batch in echo.stream(request):
        for c in batch:
            accumulator.add(c)
    streamed = cast(dict[str, Any], accumulator.result())
    assert _without_call_ids(streamed) == _without_call_ids(created)


class _Delta(dict[str, Any]):
    """A delta the accumulator's text-only shortcut does not take (not exactly a dict)."""


def _general(chunk: dict[str, Any]) -> dict[str, Any]:
    choices = [
        {**choice, "delta": _Delta(choice["delta"])} if isinstance(choice.get("delta"), dict)
        else choice
        for choice in chunk.get("choices") or ()
    ]  # fmt: skip
    return {**chunk, "choices": choices}


@pytest.mark.parametrize("seed", range(50))
def test_the_text_only_shortcut_adds_up_to_what_the_general_rules_do(seed: int) -> None:
    rng = random.Random(seed)
    shapes: list[Callable[[int], dict[str, Any]]] = [
        lambda i: {"index": i, "delta": {"content": rng.choice(["a", "", "é ", "x" * 5])},
                   "logprobs": None, "finish_reason": None},
        lambda i: {"index": i, "delta": {"role": "assistant", "content": ""}},
        lambda i: {"index": i, "delta": {"content": "t"}, "finish_reason": "stop"},
        lambda i: {"index": i, "delta": {"content": "l"},
                   "logprobs": {"content": [{"token": "l", "logprob": -0.1}]}},
        lambda i: {"index": i, "delta": {"refusal": "no"}},
        lambda i: {"index": i, "delta": {"content": None}},
        lambda i: {"index": i, "delta": {"content": "v"}, "stop_reason": 7},
        lambda i: {"index": i,
                   "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}},
        lambda i: {"index": i, "delta": {"reasoning_content": "r"}},
        lambda i: {"index": i, "delta": {}},
    ]  # fmt: skip
    chunks = [
        {"id": "chatcmpl-x", "created": 1, "model": "m", "object": "chat.completion.chunk",
         "choices": [rng.choice(shapes)(rng.choice([0, 0, 1]))]}
        for _ in range(rng.randint(1, 30))
    ]  # fmt: skip
    shortcut, general = ChatCompletionAccumulator(), ChatCompletionAccumulator()
    for chunk in chunks:
        shortcut.add(chunk)  # type: ignore[arg-type]
        general.add(_general(chunk))  # type: ignore[arg-type]
    assert shortcut.result() == general.result()
