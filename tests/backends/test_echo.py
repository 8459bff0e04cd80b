"""The echo backend and its tokenizer: replies, cuts, tools, JSON, logprobs, usage, streams."""

from __future__ import annotations

import json
import re
from typing import Any, cast

import jsonschema
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
)
from openai.types.chat.chat_completion import Choice as ChatCompletionChoice

from chatkeep.backends.base import Backend, BackendRequest
from chatkeep.backends.echo import ALTERNATIVE_TOKENS, SYSTEM_FINGERPRINT, EchoBackend
from chatkeep.backends.tokens import count_prompt_tokens, count_tokens, split_tokens
from chatkeep.errors import InvalidRequestError

COMPLETION_ID = "chatcmpl-0123456789ABCDEFGHIJKLMNOPQRS"
CREATED = 1_750_000_000
WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "minLength": 1},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["location", "unit", "days"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_PARAMETERS}},
    {"type": "function", "function": {"name": "ping"}},
    {"type": "custom", "custom": {"name": "run_sql"}},
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_request(include_usage: bool = False, **fields: Any) -> BackendRequest:
    body = {"model": "echo-test", "messages": [{"role": "user", "content": "Hello, world!"}]}
    body.update(fields)
    # The echo backend reads only `body`; the validated model is not needed here.
    return BackendRequest(
        params=cast(Any, None),
        body=body,
        completion_id=COMPLETION_ID,
        created=CREATED,
        include_usage=include_usage,
    )


async def create(**fields: Any) -> dict[str, Any]:
    return cast(dict[str, Any], await EchoBackend().create(make_request(**fields)))


async def stream(include_usage: bool = False, **fields: Any) -> list[dict[str, Any]]:
    backend = EchoBackend()
    request = make_request(include_usage=include_usage, **fields)
    return [
        cast(dict[str, Any], chunk) async for batch in backend.stream(request) for chunk in batch
    ]


# --- the tokenizer -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Hello, world!  ", ["Hello", ",", " world", "!", "  "]),
        ("", []),
        ("  lead", ["  lead"]),
        ("a\n\nb", ["a", "\n\nb"]),
        ("snake_case x2", ["snake_case", " x2"]),
        ("你好世界 ok", ["你好世界", " ok"]),
        ("hi 👍🏽!", ["hi", " 👍", "🏽", "!"]),
    ],
)
def test_tokenizer_follows_the_documented_rule(text: str, tokens: list[str]) -> None:
    assert split_tokens(text) == tokens
    assert count_tokens(text) == len(tokens)


@pytest.mark.parametrize(
    "text",
    [
        "emoji 👩‍👩‍👧‍👦 family, flags 🇫🇷🇯🇵 and skin 👋🏾",
        "日本語のテキスト、句読点。中文：你好！한국어 텍스트",
        "combining e\u0301 and zero\u200bwidth, tabs\tand\r\nnewlines \n",
        "   \t  ",
        "mixed مرحبا ℕ ∑ x² ½ \U0001f600\U0001f600",
    ],
)
def test_tokenizer_round_trips_unicode_exactly(text: str) -> None:
    tokens = split_tokens(text)
    assert "".join(tokens) == text
    assert all(tokens)
    # Tokens never split a code point, so their UTF-8 bytes add up to the text's.
    assert b"".join(t.encode() for t in tokens) == text.encode()


def test_prompt_tokens_follow_the_cookbook_formula() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief.", "name": "setup"},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    ]
    system = 3 + 1 + 3 + (1 + 1)  # role, "Be| brief|.", name "setup" + 1
    user = 3 + 1 + 1  # role, "Hi"
    assistant = 3 + 1 + 1 + 2  # role, "f", "{|}"
    tool = 3 + 1 + 1  # role, "ok"
    assert count_prompt_tokens(messages) == system + user + assistant + tool + 3


# --- models --------------------------------------------------------------------------------


def test_serves_every_model_when_none_are_configured() -> None:
    backend: Backend = EchoBackend([])
    assert backend.name == "echo"
    assert backend.serves("gpt-4o") and backend.serves("anything")
    assert backend.models() == [
        {
            "id": "echo",
            "object": "model",
            "created": backend.models()[0]["created"],
            "owned_by": "chatkeep",
        }
    ]


def test_serves_only_the_configured_models() -> None:
    backend = EchoBackend(["echo-a", "echo-b"])
    assert backend.serves("echo-a") and not backend.serves("gpt-4o")
    assert [m["id"] for m in backend.models()] == ["echo-a", "echo-b"]
    assert {m["owned_by"] for m in backend.models()} == {"chatkeep"}
    assert backend.models() == EchoBackend(["echo-a", "echo-b"]).models()


@pytest.mark.anyio
async def test_aclose_does_nothing() -> None:
    backend = EchoBackend()
    await backend.aclose()
    assert (await backend.create(make_request()))["choices"][0]["message"]["content"]


# --- plain replies -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_create_returns_a_whole_chat_completion() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello, world!"},
    ]
    completion = await create(messages=messages)
    assert completion == {
        "id": COMPLETION_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": "echo-test",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello, world!",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 18,  # (3+1+3) + (3+1+4) + 3
            "completion_tokens": 4,
            "total_tokens": 22,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def test_system_fingerprint_is_stable_and_shaped_like_openais() -> None:
    assert re.fullmatch(r"fp_[0-9a-f]{10}", SYSTEM_FINGERPRINT)
    import chatkeep.backends.echo as echo

    assert echo.SYSTEM_FINGERPRINT == SYSTEM_FINGERPRINT


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "reply"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "se"},
                        {"type": "image_url", "image_url": {"url": "x"}},
                        {"type": "text", "text": "cond"},
                    ],
                },
                {"role": "assistant", "content": "later"},
            ],
            "second",
        ),
        ([{"role": "system", "content": "no user here"}], ""),
        ([{"role": "developer", "content": "x"}, {"role": "user", "content": ""}], ""),
    ],
)
async def test_echoes_the_last_user_message(messages: list[Any], expected: str) -> None:
    completion = await create(messages=messages)
    assert completion["choices"][0]["message"]["content"] == expected
    assert completion["usage"]["completion_tokens"] == count_tokens(expected)


@pytest.mark.anyio
async def test_n_gives_identical_choices_and_sums_completion_tokens() -> None:
    completion = await create(n=3)
    assert [c["index"] for c in completion["choices"]] == [0, 1, 2]
    assert {c["message"]["content"] for c in completion["choices"]} == {"Hello, world!"}
    assert completion["usage"]["completion_tokens"] == 3 * 4


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ([" four", "three"], "one two "),
        ("two", "one "),
        (["absent"], "one two three four"),
        (["", "one"], ""),
        (None, "one two three four"),
    ],
)
async def test_stop_cuts_before_the_earliest_stop_sequence(stop: Any, expected: str) -> None:
    messages = [{"role": "user", "content": "one two three four"}]
    completion = await create(messages=messages, stop=stop)
    choice = completion["choices"][0]
    assert choice["message"]["content"] == expected
    assert choice["finish_reason"] == "stop"
    assert completion["usage"]["completion_tokens"] == count_tokens(expected)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("limits", "content", "finish"),
    [
        ({"max_completion_tokens": 2}, "Hello,", "length"),
        ({"max_tokens": 3}, "Hello, world", "length"),
        ({"max_completion_tokens": 1, "max_tokens": 3}, "Hello", "length"),
        ({"max_completion_tokens": 4}, "Hello, world!", "stop"),
        ({"max_completion_tokens": 0}, "", "length"),
    ],
)
async def test_token_limit_cuts_and_says_length(
    limits: dict[str, int], content: str, finish: str
) -> None:
    completion = await create(**limits)
    assert completion["choices"][0]["message"]["content"] == content
    assert completion["choices"][0]["finish_reason"] == finish
    assert completion["usage"]["completion_tokens"] == count_tokens(content)


@pytest.mark.anyio
async def test_stop_and_limit_together_cut_at_whichever_comes_first() -> None:
    messages = [{"role": "user", "content": "a b c d e"}]
    assert (await create(messages=messages, stop=" d", max_tokens=2))["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "a b", "refusal": None, "annotations": []},
        "logprobs": None,
        "finish_reason": "length",
    }
    choice = (await create(messages=messages, stop=" b", max_tokens=2))["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("a", "stop")


# --- logprobs ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_logprobs_cover_every_token_with_its_bytes() -> None:
    text = "Hi 👋 世界!"
    completion = await create(messages=[{"role": "user", "content": text}], logprobs=True)
    logprobs = completion["choices"][0]["logprobs"]
    assert logprobs["refusal"] is None
    entries = logprobs["content"]
    assert "".join(e["token"] for e in entries) == text
    assert b"".join(bytes(e["bytes"]) for e in entries) == text.encode()
    assert all(e["logprob"] == 0.0 and e["top_logprobs"] == [] for e in entries)


@pytest.mark.anyio
@pytest.mark.parametrize("top", [1, 3, 20])
async def test_top_logprobs_lists_the_token_then_unlikely_alternatives(top: int) -> None:
    messages = [{"role": "user", "content": "the cat, the end."}]
    completion = await create(messages=messages, logprobs=True, top_logprobs=top)
    for entry in completion["choices"][0]["logprobs"]["content"]:
        alternatives = entry["top_logprobs"]
        assert len(alternatives) == top
        assert alternatives[0] == {"token": entry["token"], "logprob": 0.0, "bytes": entry["bytes"]}
        assert len({a["token"] for a in alternatives}) == top
        for alternative in alternatives[1:]:
            assert alternative["logprob"] == -9999.0
            assert alternative["token"] in ALTERNATIVE_TOKENS
            assert alternative["bytes"] == list(alternative["token"].encode())


@pytest.mark.anyio
async def test_logprobs_are_null_unless_asked_for() -> None:
    completion = await create(n=2, top_logprobs=None, logprobs=False)
    assert [c["logprobs"] for c in completion["choices"]] == [None, None]


# --- tools ---------------------------------------------------------------------------------


def only_tool_call(completion: dict[str, Any]) -> dict[str, Any]:
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None and choice["message"]["refusal"] is None
    (call,) = choice["message"]["tool_calls"]
    assert re.fullmatch(r"call_[0-9A-Za-z]{24}", call["id"])
    return cast(dict[str, Any], call)


@pytest.mark.anyio
async def test_required_tool_choice_calls_the_first_function_with_valid_arguments() -> None:
    completion = await create(tools=TOOLS, tool_choice="required")
    call = only_tool_call(completion)
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    arguments = json.loads(call["function"]["arguments"])
    jsonschema.validate(arguments, WEATHER_PARAMETERS)
    assert arguments["location"] == "Hello, world!"  # the echoed text, where a string fits
    assert completion["usage"]["completion_tokens"] == count_tokens(call["function"]["arguments"])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool_choice", "name", "arguments"),
    [
        ({"type": "function", "function": {"name": "ping"}}, "ping", "{}"),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [
                        {"type": "function", "function": {"name": "ping"}},
                        {"type": "function", "function": {"name": "get_weather"}},
                    ],
                },
            },
            "ping",
            "{}",
        ),
    ],
)
async def test_a_named_or_allowed_function_is_called(
    tool_choice: dict[str, Any], name: str, arguments: str
) -> None:
    call = only_tool_call(await create(tools=TOOLS, tool_choice=tool_choice))
    assert call["function"] == {"name": name, "arguments": arguments}


@pytest.mark.anyio
async def test_each_choice_gets_its_own_tool_call_id() -> None:
    completion = await create(tools=TOOLS, tool_choice="required", n=2)
    ids = {c["message"]["tool_calls"][0]["id"] for c in completion["choices"]}
    assert len(ids) == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    "tool_choice",
    [
        "auto",
        "none",
        None,
        {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}},
    ],
)
async def test_unforced_tool_choice_echoes_text(tool_choice: Any) -> None:
    completion = await create(tools=TOOLS, tool_choice=tool_choice)
    assert completion["choices"][0]["message"]["content"] == "Hello, world!"
    assert "tool_calls" not in completion["choices"][0]["message"]


@pytest.mark.anyio
async def test_a_named_custom_tool_gets_the_echoed_text_as_input() -> None:
    tool_choice = {"type": "custom", "custom": {"name": "run_sql"}}
    call = only_tool_call(await create(tools=TOOLS, tool_choice=tool_choice))
    assert call["type"] == "custom"
    assert call["custom"] == {"name": "run_sql", "input": "Hello, world!"}


@pytest.mark.anyio
async def test_deprecated_function_call_is_answered_in_kind() -> None:
    functions = [{"name": "noop"}, {"name": "get_weather", "parameters": WEATHER_PARAMETERS}]
    completion = await create(functions=functions, function_call={"name": "get_weather"})
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "function_call"
    assert choice["message"]["content"] is None and "tool_calls" not in choice["message"]
    assert choice["message"]["function_call"]["name"] == "get_weather"
    jsonschema.validate(
        json.loads(choice["message"]["function_call"]["arguments"]), WEATHER_PARAMETERS
    )
    plain = await create(functions=functions, function_call="auto")
    assert plain["choices"][0]["message"]["content"] == "Hello, world!"


@pytest.mark.anyio
async def test_tool_arguments_are_cut_by_the_token_limit_too() -> None:
    completion = await create(tools=TOOLS, tool_choice="required", max_completion_tokens=3)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"location'
    assert completion["usage"]["completion_tokens"] == 3


# --- JSON output ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_json_object_wraps_the_echoed_text() -> None:
    completion = await create(response_format={"type": "json_object"}, stop="world")
    content = completion["choices"][0]["message"]["content"]
    assert json.loads(content) == {"echo": "Hello, world!"}  # stop leaves JSON alone
    assert completion["usage"]["completion_tokens"] == count_tokens(content)


@pytest.mark.anyio
async def test_json_schema_content_is_valid_against_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "confidence": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "kind": {"anyOf": [{"$ref": "#/$defs/kind"}, {"type": "null"}]},
        },
        "required": ["answer", "confidence", "tags", "kind"],
        "additionalProperties": False,
        "$defs": {"kind": {"type": "string", "enum": ["fact", "opinion"]}},
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    completion = await create(response_format=response_format)
    value = json.loads(completion["choices"][0]["message"]["content"])
    jsonschema.validate(value, schema)
    assert value["answer"] == "Hello, world!"
    assert completion["choices"][0]["finish_reason"] == "stop"


@pytest.mark.anyio
async def test_an_unsatisfiable_schema_is_a_bad_request() -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {
            "name": "never",
            "schema": {"type": "string", "minLength": 3, "maxLength": 2},
        },
    }
    with pytest.raises(InvalidRequestError) as caught:
        await create(response_format=response_format)
    assert caught.value.param == "response_format"
    assert "never" in caught.value.message


@pytest.mark.anyio
async def test_an_unsatisfiable_tool_schema_is_a_bad_request() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"const": 2**70}}}]
    with pytest.raises(InvalidRequestError) as caught:
        await create(tools=tools, tool_choice="required")
    assert caught.value.param == "tools"
    functions = [
        {
            "name": "g",
            "parameters": {"type": "object", "required": ["x"], "additionalProperties": False},
        }
    ]
    with pytest.raises(InvalidRequestError) as caught:
        await create(functions=functions, function_call={"name": "g"})
    assert caught.value.param == "functions"
    assert "'g'" in caught.value.message


@pytest.mark.anyio
async def test_json_output_is_cut_by_the_token_limit() -> None:
    completion = await create(response_format={"type": "json_object"}, max_tokens=2)
    assert completion["choices"][0]["message"]["content"] == '{"'
    assert completion["choices"][0]["finish_reason"] == "length"


# --- streaming -----------------------------------------------------------------------------


def accumulate(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Choices rebuilt from streamed deltas, the way the SDKs' stream helpers do it."""
    choices: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for part in chunk["choices"]:
            choice = choices.setdefault(
                part["index"],
                {"index": part["index"], "message": {}, "logprobs": None, "finish_reason": None},
            )
            merge_delta(choice["message"], part["delta"])
            if part["logprobs"] is not None:
                if choice["logprobs"] is None:
                    choice["logprobs"] = {"content": [], "refusal": None}
                choice["logprobs"]["content"] += part["logprobs"]["content"]
            if part["finish_reason"] is not None:
                assert choice["finish_reason"] is None
                choice["finish_reason"] = part["finish_reason"]
    return [choices[i] for i in sorted(choices)]


def merge_delta(message: dict[str, Any], delta: dict[str, Any]) -> None:
    for key in ("role", "content", "refusal"):
        if key in delta:
            if isinstance(message.get(key), str) and delta[key] is not None:
                message[key] += delta[key]
            elif key not in message or delta[key] is not None:
                message[key] = delta[key]
    for call in delta.get("tool_calls", []):
        calls = message.setdefault("tool_calls", [])
        if call["index"] == len(calls):
            calls.append(
                {
                    k: (dict(v) if isinstance(v, dict) else v)
                    for k, v in call.items()
                    if k != "index"
                }
            )
            continue
        for field, pieces in call.items():
            if isinstance(pieces, dict):
                for key, piece in pieces.items():
                    calls[call["index"]][field][key] += piece
    if "function_call" in delta:
        function_call = message.setdefault("function_call", {"name": "", "arguments": ""})
        for key, piece in delta["function_call"].items():
            function_call[key] += piece


def without_ids(choice: dict[str, Any]) -> dict[str, Any]:
    message = {k: v for k, v in choice["message"].items() if k != "annotations"}
    if "tool_calls" in message:
        message["tool_calls"] = [{**c, "id": "call"} for c in message["tool_calls"]]
    return {**choice, "message": message}


TOOL_CHOICE_CUSTOM = {"type": "custom", "custom": {"name": "run_sql"}}
STREAM_CASES: list[dict[str, Any]] = [
    {},
    {"n": 3, "logprobs": True, "top_logprobs": 2},
    {
        "messages": [{"role": "user", "content": "日本語 👍🏽 text, with  spaces  "}],
        "logprobs": True,
    },
    {"messages": [{"role": "user", "content": ""}], "logprobs": True},
    {"stop": ["world"], "max_tokens": 1},
    {"max_completion_tokens": 2},
    {"tools": TOOLS, "tool_choice": "required", "n": 2, "logprobs": True},
    {"tools": TOOLS, "tool_choice": TOOL_CHOICE_CUSTOM},
    {"functions": [{"name": "ping"}], "function_call": {"name": "ping"}},
    {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": WEATHER_PARAMETERS},
        }
    },
]


@pytest.mark.anyio
@pytest.mark.parametrize("fields", STREAM_CASES)
async def test_streamed_deltas_add_up_to_the_completion(fields: dict[str, Any]) -> None:
    completion = await create(**fields)
    chunks = await stream(include_usage=True, **fields)
    streamed = accumulate(chunks)
    assert [without_ids(c) for c in streamed] == [without_ids(c) for c in completion["choices"]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == completion["usage"]
    assert all(chunk["usage"] is None for chunk in chunks[:-1])


@pytest.mark.anyio
@pytest.mark.parametrize("fields", STREAM_CASES)
async def test_every_chunk_has_the_same_envelope_and_no_error_key(fields: dict[str, Any]) -> None:
    chunks = await stream(**fields)
    for chunk in chunks:
        assert "error" not in chunk and "usage" not in chunk
        assert chunk["id"] == COMPLETION_ID and chunk["created"] == CREATED
        assert chunk["object"] == "chat.completion.chunk" and chunk["model"] == "echo-test"
        assert chunk["system_fingerprint"] == SYSTEM_FINGERPRINT
        assert chunk["service_tier"] == "default"
        assert len(chunk["choices"]) == 1
    first = chunks[0]["choices"][0]
    assert first["delta"]["role"] == "assistant" and first["finish_reason"] is None


@pytest.mark.anyio
async def test_a_text_stream_is_role_then_one_chunk_per_token_then_finish() -> None:
    chunks = await stream()
    deltas = [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks]
    assert deltas == [
        ({"role": "assistant", "content": "", "refusal": None}, None),
        ({"content": "Hello"}, None),
        ({"content": ","}, None),
        ({"content": " world"}, None),
        ({"content": "!"}, None),
        ({}, "stop"),
    ]


@pytest.mark.anyio
async def test_a_tool_call_streams_its_head_then_argument_pieces() -> None:
    chunks = await stream(
        tools=TOOLS, tool_choice={"type": "function", "function": {"name": "ping"}}
    )
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": None, "refusal": None}
    head = deltas[1]["tool_calls"][0]
    assert head["index"] == 0 and head["type"] == "function"
    assert head["id"].startswith("call_")
    assert head["function"] == {"name": "ping", "arguments": ""}
    assert deltas[2:4] == [
        {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def sdk_view(choice: ChatCompletionChoice) -> dict[str, Any]:
    message = choice.message
    calls = [
        (c.type, c.function.name, c.function.arguments)
        for c in message.tool_calls or []
        if isinstance(c, ChatCompletionMessageFunctionToolCall)
    ]
    return {
        "content": message.content,
        "function_call": message.function_call,
        "tool_calls": calls,
        "logprobs": choice.logprobs,
        "finish_reason": choice.finish_reason,
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fields", [f for f in STREAM_CASES if f.get("tool_choice", {}) != TOOL_CHOICE_CUSTOM]
)
async def test_the_sdk_stream_accumulator_rebuilds_the_completion(fields: dict[str, Any]) -> None:
    # openai-python's own accumulator (behind `client.chat.completions.stream`); its chunk
    # types know only function tool calls, hence no custom-tool case here.
    completion = ChatCompletion.model_validate(await create(**fields))
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in await stream(include_usage=True, **fields):
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    snapshot = state.current_completion_snapshot
    assert [sdk_view(c) for c in snapshot.choices] == [sdk_view(c) for c in completion.choices]
    assert snapshot.usage == completion.usage
