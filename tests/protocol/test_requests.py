"""Create and update bodies: what passes, and the OpenAI-worded 400 for what does not."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pydantic
import pytest

from chatkeep.errors import InvalidRequestError
from chatkeep.protocol.codec import INVALID_JSON_MESSAGE
from chatkeep.protocol.messages import (
    ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestMessageContentPartImage,
    ChatCompletionRequestUserMessage,
)
from chatkeep.protocol.requests import (
    CreateChatCompletionRequest,
    ParsedCreateRequest,
    parse_create_request,
    parse_update_request,
)
from chatkeep.protocol.tools import ChatCompletionNamedToolChoice, CustomToolChatCompletions

USER = {"role": "user", "content": "Hello"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TOOL_CALL = {
    "id": "call_abc123",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def encode(body: Any) -> bytes:
    # The standard library, not orjson: bodies here hold integers beyond 64 bits.
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def create(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [USER], **fields}


def with_message(message: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [USER, message]}


def user_parts(*parts: Any) -> dict[str, Any]:
    return with_message({"role": "user", "content": list(parts)})


def parse(body: Any) -> ParsedCreateRequest:
    return parse_create_request(encode(body))


def rejection(body: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        parse(body)
    return caught.value


BAD_BODIES = [
    # Not a JSON object at all.
    ("malformed json", b'{"model": "gpt-4o",', None, None),
    ("array body", [USER], None, "invalid_type"),
    ("string body", "hello", None, "invalid_type"),
    # Required fields.
    ("missing model", {"messages": [USER]}, "model", "missing_required_parameter"),
    ("missing messages", {"model": "gpt-4o"}, "messages", "missing_required_parameter"),
    ("empty messages", create(messages=[]), "messages", "empty_array"),
    ("messages not array", create(messages=USER), "messages", "invalid_type"),
    ("model not string", create(model=4), "model", "invalid_type"),
    ("model empty", create(model=""), "model", None),
    # Text no store can keep (PostgreSQL's `text` cannot hold U+0000), refused before any call.
    ("model with NUL", create(model="gpt-4o\x00"), "model", "invalid_value"),
    # A lone surrogate is malformed JSON for both decoders (a body with a 19-digit integer
    # takes the standard library's), so it never reaches validation.
    (
        "model with lone surrogate",
        create(model="gpt-\ud800", seed=4944116822809979520),
        None,
        None,
    ),
    ("metadata key with NUL", create(metadata={"a\x00b": "v"}), "metadata", "invalid_value"),
    ("metadata value with NUL", create(metadata={"k": "a\x00b"}), "metadata.k", "invalid_value"),
    (
        "metadata value with lone surrogate",
        create(metadata={"k": "\udc00"}, seed=4944116822809979520),
        None,
        None,
    ),
    # Messages and roles.
    (
        "unknown role",
        with_message({"role": "bogus", "content": "x"}),
        "messages[1].role",
        "invalid_value",
    ),
    (
        "missing role",
        with_message({"content": "x"}),
        "messages[1].role",
        "missing_required_parameter",
    ),
    (
        "role not string",
        with_message({"role": 1, "content": "x"}),
        "messages[1].role",
        "invalid_type",
    ),
    ("message not object", with_message("hello"), "messages[1]", "invalid_type"),
    (
        "user without content",
        with_message({"role": "user"}),
        "messages[1].content",
        "missing_required_parameter",
    ),
    (
        "user content object",
        with_message({"role": "user", "content": {"type": "text"}}),
        "messages[1].content",
        "invalid_type",
    ),
    (
        "user content null",
        with_message({"role": "user", "content": None}),
        "messages[1].content",
        "invalid_type",
    ),
    (
        "user content empty array",
        with_message({"role": "user", "content": []}),
        "messages[1].content",
        "empty_array",
    ),
    (
        "system image part",
        with_message(
            {
                "role": "system",
                "content": [{"type": "image_url", "image_url": {"url": "https://x"}}],
            }
        ),
        "messages[1].content[0].type",
        "invalid_value",
    ),
    (
        "tool without tool_call_id",
        with_message({"role": "tool", "content": "42"}),
        "messages[1].tool_call_id",
        "missing_required_parameter",
    ),
    ("assistant without content", with_message({"role": "assistant"}), "messages[1].content", None),
    (
        "assistant null content",
        with_message({"role": "assistant", "content": None}),
        "messages[1].content",
        None,
    ),
    (
        "assistant image part",
        with_message(
            {
                "role": "assistant",
                "content": [{"type": "image_url", "image_url": {"url": "https://x"}}],
            }
        ),
        "messages[1].content[0].type",
        "invalid_value",
    ),
    (
        "assistant empty tool_calls",
        with_message({"role": "assistant", "tool_calls": []}),
        "messages[1].tool_calls",
        "empty_array",
    ),
    (
        "assistant tool call bad name",
        with_message(
            {
                "role": "assistant",
                "tool_calls": [
                    {**TOOL_CALL, "function": {"name": "get weather", "arguments": "{}"}}
                ],
            }
        ),
        "messages[1].tool_calls[0].function.name",
        "invalid_value",
    ),
    (
        "assistant tool call unknown type",
        with_message({"role": "assistant", "tool_calls": [{**TOOL_CALL, "type": "web"}]}),
        "messages[1].tool_calls[0].type",
        "invalid_value",
    ),
    (
        "function message without name",
        with_message({"role": "function", "content": "42"}),
        "messages[1].name",
        "missing_required_parameter",
    ),
    # Content parts.
    (
        "unknown part type",
        user_parts({"type": "video", "video": {}}),
        "messages[1].content[0].type",
        "invalid_value",
    ),
    (
        "refusal part from user",
        user_parts({"type": "refusal", "refusal": "no"}),
        "messages[1].content[0].type",
        "invalid_value",
    ),
    ("part not object", user_parts("hello"), "messages[1].content[0]", "invalid_type"),
    (
        "part without type",
        user_parts({"text": "hi"}),
        "messages[1].content[0].type",
        "missing_required_parameter",
    ),
    (
        "text part without text",
        user_parts({"type": "text"}),
        "messages[1].content[0].text",
        "missing_required_parameter",
    ),
    (
        "text part number text",
        user_parts({"type": "text", "text": 5}),
        "messages[1].content[0].text",
        "invalid_type",
    ),
    (
        "image detail",
        user_parts({"type": "image_url", "image_url": {"url": "https://x", "detail": "ultra"}}),
        "messages[1].content[0].image_url.detail",
        "invalid_value",
    ),
    (
        "image without url",
        user_parts({"type": "image_url", "image_url": {}}),
        "messages[1].content[0].image_url.url",
        "missing_required_parameter",
    ),
    (
        "audio format",
        user_parts({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "ogg"}}),
        "messages[1].content[0].input_audio.format",
        "invalid_value",
    ),
    (
        "file part string",
        user_parts({"type": "file", "file": "abc"}),
        "messages[1].content[0].file",
        "invalid_type",
    ),
    # Tools and tool choice.
    ("tool unknown type", create(tools=[{"type": "retrieval"}]), "tools[0].type", "invalid_value"),
    (
        "tool name with space",
        create(tools=[WEATHER_TOOL, {"type": "function", "function": {"name": "get weather"}}]),
        "tools[1].function.name",
        "invalid_value",
    ),
    (
        "tool name too long",
        create(tools=[{"type": "function", "function": {"name": "f" * 65}}]),
        "tools[0].function.name",
        "string_above_max_length",
    ),
    (
        "tool without function",
        create(tools=[{"type": "function"}]),
        "tools[0].function",
        "missing_required_parameter",
    ),
    (
        "tool parameters array",
        create(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
        "tools[0].function.parameters",
        "invalid_type",
    ),
    ("empty tools", create(tools=[]), "tools", "empty_array"),
    (
        "custom tool grammar syntax",
        create(
            tools=[
                {
                    "type": "custom",
                    "custom": {
                        "name": "g",
                        "format": {
                            "type": "grammar",
                            "grammar": {"definition": "x", "syntax": "peg"},
                        },
                    },
                }
            ]
        ),
        "tools[0].custom.format.grammar.syntax",
        "invalid_value",
    ),
    (
        "tool_choice bad string",
        create(tools=[WEATHER_TOOL], tool_choice="always"),
        "tool_choice",
        "invalid_value",
    ),
    (
        "tool_choice bad type",
        create(tools=[WEATHER_TOOL], tool_choice={"type": "tool"}),
        "tool_choice.type",
        "invalid_value",
    ),
    (
        "tool_choice number",
        create(tools=[WEATHER_TOOL], tool_choice=1),
        "tool_choice",
        "invalid_type",
    ),
    (
        "tool_choice function without name",
        create(tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {}}),
        "tool_choice.function.name",
        "missing_required_parameter",
    ),
    # Cross-field rules: a tool choice must name something offered.
    ("tool_choice required without tools", create(tool_choice="required"), "tool_choice", None),
    (
        "tool_choice function without tools",
        create(tool_choice={"type": "function", "function": {"name": "get_weather"}}),
        "tool_choice",
        None,
    ),
    (
        "tool_choice allowed_tools without tools",
        create(
            tool_choice={
                "type": "allowed_tools",
                "allowed_tools": {"mode": "required", "tools": [WEATHER_TOOL]},
            }
        ),
        "tool_choice",
        None,
    ),
    (
        "tool_choice function not in tools",
        create(tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "f"}}),
        "tool_choice",
        None,
    ),
    (
        "tool_choice custom names a function tool",
        create(
            tools=[WEATHER_TOOL], tool_choice={"type": "custom", "custom": {"name": "get_weather"}}
        ),
        "tool_choice",
        None,
    ),
    (
        "parallel_tool_calls without tools",
        create(parallel_tool_calls=False),
        "parallel_tool_calls",
        None,
    ),
    (
        "function_call named without functions",
        create(function_call={"name": "f"}),
        "function_call",
        None,
    ),
    (
        "function_call not in functions",
        create(functions=[{"name": "f"}], function_call={"name": "g"}),
        "function_call",
        None,
    ),
    (
        "function_call names a tool, not a function",
        create(tools=[WEATHER_TOOL], function_call={"name": "get_weather"}),
        "function_call",
        None,
    ),
    (
        "allowed_tools mode",
        create(
            tools=[WEATHER_TOOL],
            tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "none", "tools": []}},
        ),
        "tool_choice.allowed_tools.mode",
        "invalid_value",
    ),
    (
        "function_call bad string",
        create(function_call="required"),
        "function_call",
        "invalid_value",
    ),
    (
        "functions bad name",
        create(functions=[{"name": "a.b"}]),
        "functions[0].name",
        "invalid_value",
    ),
    # Response format.
    (
        "response_format type",
        create(response_format={"type": "yaml"}),
        "response_format.type",
        "invalid_value",
    ),
    (
        "json_schema without name",
        create(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        "response_format.json_schema.name",
        "missing_required_parameter",
    ),
    (
        "json_schema bad name",
        create(response_format={"type": "json_schema", "json_schema": {"name": "my schema"}}),
        "response_format.json_schema.name",
        "invalid_value",
    ),
    ("response_format string", create(response_format="json"), "response_format", "invalid_type"),
    # Sampling parameters.
    ("stop five items", create(stop=["a", "b", "c", "d", "e"]), "stop", "array_above_max_length"),
    ("stop empty array", create(stop=[]), "stop", "empty_array"),
    ("stop number item", create(stop=["a", "b", 3]), "stop[2]", "invalid_type"),
    ("stop number", create(stop=5), "stop", "invalid_type"),
    ("n zero", create(n=0), "n", "integer_below_min_value"),
    ("n 129", create(n=129), "n", "integer_above_max_value"),
    ("n string", create(n="2"), "n", "invalid_type"),
    ("n boolean", create(n=True), "n", "invalid_type"),
    ("n decimal", create(n=1.5), "n", "invalid_type"),
    ("temperature 2.1", create(temperature=2.1), "temperature", "decimal_above_max_value"),
    ("temperature -0.1", create(temperature=-0.1), "temperature", "decimal_below_min_value"),
    ("temperature integer 3", create(temperature=3), "temperature", "decimal_above_max_value"),
    ("temperature string", create(temperature="1"), "temperature", "invalid_type"),
    (
        "temperature beyond double",
        create(temperature=10**400),
        "temperature",
        "decimal_above_max_value",
    ),
    ("top_p 1.5", create(top_p=1.5), "top_p", "decimal_above_max_value"),
    (
        "frequency_penalty 2.5",
        create(frequency_penalty=2.5),
        "frequency_penalty",
        "decimal_above_max_value",
    ),
    (
        "presence_penalty -3",
        create(presence_penalty=-3),
        "presence_penalty",
        "decimal_below_min_value",
    ),
    (
        "logit_bias 101",
        create(logit_bias={"50256": 101}),
        "logit_bias.50256",
        "integer_above_max_value",
    ),
    (
        "logit_bias string value",
        create(logit_bias={"50256": "1"}),
        "logit_bias.50256",
        "invalid_type",
    ),
    (
        "top_logprobs 21",
        create(logprobs=True, top_logprobs=21),
        "top_logprobs",
        "integer_above_max_value",
    ),
    ("top_logprobs without logprobs", create(top_logprobs=2), "top_logprobs", None),
    (
        "top_logprobs with logprobs false",
        create(logprobs=False, top_logprobs=2),
        "top_logprobs",
        None,
    ),
    (
        "max_completion_tokens 0",
        create(max_completion_tokens=0),
        "max_completion_tokens",
        "integer_below_min_value",
    ),
    ("max_tokens 0", create(max_tokens=0), "max_tokens", "integer_below_min_value"),
    ("seed 2**63", create(seed=2**63), "seed", "integer_above_max_value"),
    ("seed -(2**63)-1", create(seed=-(2**63) - 1), "seed", "integer_below_min_value"),
    ("seed 10**30", create(seed=10**30), "seed", "integer_above_max_value"),
    ("seed decimal", create(seed=1.5), "seed", "invalid_type"),
    # Metadata.
    (
        "metadata 17 pairs",
        create(metadata={f"k{i}": "v" for i in range(17)}),
        "metadata",
        "object_above_max_properties",
    ),
    (
        "metadata key 65 chars",
        create(metadata={"k" * 65: "v"}),
        "metadata",
        "string_above_max_length",
    ),
    (
        "metadata value 513 chars",
        create(metadata={"note": "v" * 513}),
        "metadata.note",
        "string_above_max_length",
    ),
    ("metadata value number", create(metadata={"count": 3}), "metadata.count", "invalid_type"),
    ("metadata array", create(metadata=["a"]), "metadata", "invalid_type"),
    ("metadata key like a tag", create(metadata={"~user": 5}), "metadata.~user", "invalid_type"),
    # Streaming and the rest.
    (
        "stream_options without stream",
        create(stream_options={"include_usage": True}),
        "stream_options",
        None,
    ),
    (
        "stream_options with stream false",
        create(stream=False, stream_options={"include_usage": True}),
        "stream_options",
        None,
    ),
    ("stream string", create(stream="true"), "stream", "invalid_type"),
    ("store integer", create(store=1), "store", "invalid_type"),
    ("reasoning_effort", create(reasoning_effort="extreme"), "reasoning_effort", "invalid_value"),
    ("service_tier", create(service_tier="gold"), "service_tier", "invalid_value"),
    ("modalities item", create(modalities=["text", "video"]), "modalities[1]", "invalid_value"),
    (
        "audio without voice",
        create(audio={"format": "wav"}),
        "audio.voice",
        "missing_required_parameter",
    ),
    (
        "safety_identifier too long",
        create(safety_identifier="u" * 65),
        "safety_identifier",
        "string_above_max_length",
    ),
    (
        "prediction type",
        create(prediction={"type": "diff", "content": "x"}),
        "prediction.type",
        "invalid_value",
    ),
    (
        "moderation without model",
        create(moderation={}),
        "moderation.model",
        "missing_required_parameter",
    ),
]


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [pytest.param(body, param, code, id=name) for name, body, param, code in BAD_BODIES],
)
def test_bad_body_is_a_400_naming_the_param(body: Any, param: str | None, code: str | None) -> None:
    error = rejection(body)

    envelope = error.to_envelope()["error"]
    assert error.status_code == 400
    assert set(envelope) == {"message", "type", "param", "code"}
    assert envelope["type"] == "invalid_request_error"
    assert (envelope["param"], envelope["code"]) == (param, code)
    assert envelope["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"model": "gpt-4o"},
            "Missing required parameter: 'messages'.",
        ),
        (
            with_message({"content": "x"}),
            "Missing required parameter: 'messages[1].role'.",
        ),
        (
            create(n="2"),
            "Invalid type for 'n': expected an integer, but got a string instead.",
        ),
        (
            create(n=True),
            "Invalid type for 'n': expected an integer, but got a boolean instead.",
        ),
        (
            create(temperature=2.1),
            "Invalid 'temperature': decimal above maximum value. "
            "Expected a value <= 2, but got 2.1 instead.",
        ),
        (
            create(n=0),
            "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead.",
        ),
        (
            create(seed=2**63),
            "Invalid 'seed': integer above maximum value. "
            f"Expected a value <= {2**63 - 1}, but got {2**63} instead.",
        ),
        (
            create(messages=[]),
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
        ),
        (
            create(stop=["a", "b", "c", "d", "e"]),
            "Invalid 'stop': array too long. Expected an array with maximum length 4, "
            "but got an array with length 5 instead.",
        ),
        (
            with_message({"role": "bogus", "content": "x"}),
            "Invalid value: 'bogus'. Supported values are: 'system', 'assistant', 'user', "
            "'function', 'tool', and 'developer'.",
        ),
        (
            user_parts({"type": "refusal", "refusal": "no"}),
            "Invalid value: 'refusal'. Supported values are: 'text', 'image_url', "
            "'input_audio', and 'file'.",
        ),
        (
            with_message({"role": "user", "content": {"type": "text"}}),
            "Invalid type for 'messages[1].content': expected one of a string or array of "
            "objects, but got an object instead.",
        ),
        (
            user_parts("hello"),
            "Invalid type for 'messages[1].content[0]': expected an object, "
            "but got a string instead.",
        ),
        (
            create(tools=[{"type": "function", "function": {"name": "get weather"}}]),
            "Invalid 'tools[0].function.name': string does not match pattern. "
            "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
        ),
        (
            create(metadata={f"k{i}": "v" for i in range(17)}),
            "Invalid 'metadata': too many properties. Expected an object with at most 16 "
            "properties, but got an object with 17 properties instead.",
        ),
        (
            create(metadata={"key": "v" * 600}),
            "Invalid 'metadata.key': string too long. Expected a string with maximum length "
            "512, but got a string with length 600 instead.",
        ),
        (
            create(stream_options={"include_usage": True}),
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        ),
        (
            create(top_logprobs=2),
            "The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled.",
        ),
        (create(model=""), "you must provide a model parameter"),
        (
            create(model="a\x00"),
            "Invalid 'model': string contains a NUL character (U+0000), which cannot be stored.",
        ),
        (
            create(metadata={"k\x00": "v"}),
            "Invalid 'metadata': key contains a NUL character (U+0000), which cannot be stored.",
        ),
        (
            create(metadata={"k": "\x00"}),
            "Invalid 'metadata.k': string contains a NUL character (U+0000), which cannot be "
            "stored.",
        ),
        (create(model="m\ud800", seed=4944116822809979520), INVALID_JSON_MESSAGE),
        (create(metadata={"k": "\udc00"}, seed=4944116822809979520), INVALID_JSON_MESSAGE),
        (
            create(tool_choice="required"),
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
        ),
        (
            create(
                tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "f"}}
            ),
            "Invalid value for 'tool_choice': no function named 'f' was specified in the "
            "'tools' parameter.",
        ),
        (
            create(tools=[WEATHER_TOOL], tool_choice={"type": "custom", "custom": {"name": "x"}}),
            "Invalid value for 'tool_choice': no custom tool named 'x' was specified in the "
            "'tools' parameter.",
        ),
        (
            create(parallel_tool_calls=True),
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed "
            "when 'tools' are specified.",
        ),
        (
            create(function_call={"name": "f"}),
            "Invalid value for 'function_call': 'function_call' is only allowed when "
            "'functions' are specified.",
        ),
        (
            create(functions=[{"name": "f"}], function_call={"name": "g"}),
            "Invalid value for 'function_call': no function named 'g' was specified in the "
            "'functions' parameter.",
        ),
    ],
)
def test_message_is_worded_as_openai_words_it(body: Any, message: str) -> None:
    assert rejection(body).message == message


def test_unknown_role_is_one_clean_error_not_one_per_union_member() -> None:
    error = rejection(with_message({"role": "robot", "content": "x", "extra": 1}))

    assert error.param == "messages[1].role"
    assert "'robot'" in error.message


# --- bodies that must pass ---------------------------------------------------------------


def test_minimal_sdk_call_passes_and_keeps_the_body_as_sent() -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hi"}]}

    parsed = parse(body)

    assert parsed.body == body
    assert parsed.params.model == "gpt-4o"
    assert isinstance(parsed.params.messages[0], ChatCompletionRequestUserMessage)
    assert parsed.params.messages[0].content == "Say hi"
    assert parsed.params.temperature is None  # unset stays unset: no defaults filled in
    assert parsed.params.model_fields_set == {"model", "messages"}


def test_typical_sdk_call_with_every_common_parameter_passes() -> None:
    body = create(
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "system", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Weather in Paris?", "name": "alice"},
            {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
            {"role": "tool", "tool_call_id": "call_abc123", "content": "18C"},
        ],
        store=True,
        metadata={"project": "demo", "user": "42"},
        temperature=0,
        top_p=1,
        n=2,
        stop=["\n\n"],
        max_completion_tokens=256,
        frequency_penalty=-2,
        presence_penalty=2.0,
        logit_bias={"50256": -100},
        logprobs=True,
        top_logprobs=20,
        user="end-user-1",
        stream=True,
        stream_options={"include_usage": True},
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "weather-v1", "schema": {"type": "object"}, "strict": True},
        },
        reasoning_effort="low",
        service_tier="auto",
    )

    params = parse(body).params

    assert params.temperature == 0.0
    assert params.n == 2
    assert params.metadata == {"project": "demo", "user": "42"}
    assert params.stream_options is not None and params.stream_options.include_usage is True
    assert isinstance(params.tool_choice, ChatCompletionNamedToolChoice)
    assert params.tool_choice.function.name == "get_weather"
    assistant = params.messages[3]
    assert isinstance(assistant, ChatCompletionRequestAssistantMessage)
    assert assistant.tool_calls is not None
    assert assistant.tool_calls[0].id == "call_abc123"


def test_seed_beyond_double_precision_is_kept_exactly() -> None:
    parsed = parse_create_request(
        b'{"model":"m","messages":[{"role":"user","content":"x"}],"seed":4944116822809979520}'
    )

    assert parsed.params.seed == 4944116822809979520
    assert parsed.body["seed"] == 4944116822809979520


@pytest.mark.parametrize("seed", [2**63 - 1, -(2**63), 0])
def test_seed_accepts_the_whole_int64_range(seed: int) -> None:
    assert parse(create(seed=seed)).params.seed == seed


def test_unknown_top_level_fields_are_kept_for_upstream_servers() -> None:
    body = create(top_k=40, chat_template_kwargs={"enable_thinking": False})

    parsed = parse(body)

    assert parsed.body["top_k"] == 40
    assert parsed.params.model_extra == {
        "top_k": 40,
        "chat_template_kwargs": {"enable_thinking": False},
    }


def test_unknown_keys_inside_a_message_are_kept() -> None:
    parsed = parse(with_message({"role": "assistant", "content": "hi", "reasoning_content": "..."}))

    assert parsed.params.messages[1].model_extra == {"reasoning_content": "..."}


def test_user_content_parts_of_every_kind_pass() -> None:
    body = user_parts(
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-abc"}},
    )

    message = parse(body).params.messages[1]

    assert isinstance(message, ChatCompletionRequestUserMessage)
    assert isinstance(message.content, list)
    assert [part.type for part in message.content] == ["text", "image_url", "input_audio", "file"]
    image = message.content[1]
    assert isinstance(image, ChatCompletionRequestMessageContentPartImage)
    assert image.image_url.detail == "low"


@pytest.mark.parametrize(
    "message",
    [
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "assistant", "audio": {"id": "audio_abc"}},
        {"role": "assistant", "content": "", "refusal": None},
        {"role": "function", "name": "f", "content": None},
    ],
    ids=["refusal part", "function_call", "audio reference", "empty string", "function role"],
)
def test_assistant_and_function_message_forms_pass(message: dict[str, Any]) -> None:
    assert parse(with_message(message)).params.messages[1].role == message["role"]


def test_tool_forms_pass() -> None:
    custom = {
        "type": "custom",
        "custom": {
            "name": "sql",
            "format": {"type": "grammar", "grammar": {"definition": "start: x", "syntax": "lark"}},
        },
    }
    for tool_choice in [
        "none",
        "auto",
        "required",
        {"type": "custom", "custom": {"name": "sql"}},
        {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [WEATHER_TOOL]}},
    ]:
        params = parse(create(tools=[WEATHER_TOOL, custom], tool_choice=tool_choice)).params
        assert params.tools is not None and isinstance(params.tools[1], CustomToolChatCompletions)


def test_deprecated_functions_and_function_call_pass() -> None:
    params = parse(
        create(functions=[{"name": "f", "parameters": {}}], function_call={"name": "f"})
    ).params

    assert params.functions is not None and params.functions[0].name == "f"


@pytest.mark.parametrize(
    "fields",
    [
        {"tool_choice": "none"},
        {"tool_choice": "auto"},
        {"function_call": "none"},
        {"function_call": "auto"},
        {"functions": [{"name": "f"}], "function_call": {"name": "f"}},
        {"tools": [WEATHER_TOOL], "parallel_tool_calls": True},
    ],
    ids=lambda fields: ",".join(f"{k}={v}" for k, v in fields.items()),
)
def test_choices_that_force_nothing_need_no_tools(fields: dict[str, Any]) -> None:
    params = parse(create(**fields)).params

    assert set(fields) <= params.model_fields_set


def test_nul_in_message_content_is_kept_as_sent() -> None:
    # Message content lives in a JSON column, which keeps U+0000 on every store.
    body = with_message({"role": "user", "content": "a\x00b", "name": "n"})

    parsed = parse(body)

    assert parsed.body["messages"][1]["content"] == "a\x00b"
    assert parsed.params.messages[1].content == "a\x00b"


def test_non_ascii_model_and_metadata_pass() -> None:
    params = parse(create(model="modèle-𝄞", metadata={"clé 🌍": "valeur 𠜎", "empty": ""})).params

    assert params.model == "modèle-𝄞"
    assert params.metadata == {"clé 🌍": "valeur 𠜎", "empty": ""}


@pytest.mark.parametrize(
    "fields",
    [
        {"stop": "END"},
        {"response_format": {"type": "json_object"}},
        {"response_format": {"type": "text"}},
        {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "mp3"}},
        {"audio": {"voice": {"id": "voice_123"}, "format": "pcm16"}},
        {"prediction": {"type": "content", "content": [{"type": "text", "text": "x"}]}},
        {
            "web_search_options": {
                "user_location": {"type": "approximate", "approximate": {"city": "Paris"}}
            }
        },
        {"moderation": {"model": "omni-moderation-latest", "policy": {"input": {"mode": "block"}}}},
        {"prompt_cache_options": {"ttl": "30m", "mode": "explicit"}, "prompt_cache_key": "k"},
        {"metadata": None, "stop": None, "temperature": None, "tools": None},
        {"metadata": {f"k{i}": "v" * 512 for i in range(16)}},
        {"temperature": 2, "top_p": 0, "n": 128, "top_logprobs": 0, "logprobs": True},
    ],
    ids=lambda fields: ",".join(fields),
)
def test_other_valid_parameters_pass(fields: dict[str, Any]) -> None:
    params = parse(create(**fields)).params

    for name, value in fields.items():
        assert name in params.model_fields_set
        if value is None or isinstance(value, str | int):
            assert getattr(params, name) == value


def test_the_model_validates_directly_too() -> None:
    params = CreateChatCompletionRequest.model_validate(create(temperature=1))

    assert params.temperature == 1.0


# --- bodies as the official SDK sends them ------------------------------------------------


class _Sent(Exception):
    """Raised by the fake transport once the SDK has sent its request."""


def sdk_body(call: str, *args: Any, **kwargs: Any) -> bytes:
    """The exact bytes the `openai` client sends for `client.chat.completions.<call>(...)`."""
    sent: list[bytes] = []

    def capture(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.content)
        raise _Sent

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://chatkeep.test/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(capture)),
    )
    with pytest.raises((_Sent, openai.APIConnectionError)):
        getattr(client.chat.completions, call)(*args, **kwargs)
    return sent[0]


class Weather(pydantic.BaseModel):
    city: str
    celsius: float


SDK_CALLS = {
    "plain": {"messages": [USER]},
    "streamed with usage": {
        "messages": [USER],
        "stream": True,
        "stream_options": {"include_usage": True},
    },
    "stored with metadata and seed": {
        "messages": [USER],
        "store": True,
        "metadata": {"topic": "weather"},
        "seed": 4944116822809979520,
    },
    "tools": {
        "messages": [USER],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    },
    "vendor fields through extra_body": {
        "messages": [USER],
        "extra_body": {"top_k": 40, "chat_template_kwargs": {"enable_thinking": False}},
    },
}


@pytest.mark.parametrize("kwargs", list(SDK_CALLS.values()), ids=list(SDK_CALLS))
def test_sdk_create_bodies_pass(kwargs: dict[str, Any]) -> None:
    sent = sdk_body("create", model="gpt-4o", **kwargs)

    parsed = parse_create_request(sent)

    assert parsed.body == json.loads(sent)
    assert parsed.params.model == "gpt-4o"
    assert parsed.params.model_extra == kwargs.get("extra_body", {})


def test_sdk_structured_output_body_passes() -> None:
    sent = sdk_body("parse", model="gpt-4o", messages=[USER], response_format=Weather)

    params = parse_create_request(sent).params

    assert params.response_format is not None
    assert params.response_format.type == "json_schema"


def test_sdk_update_bodies_pass() -> None:
    set_body = sdk_body("update", "chatcmpl-abc", metadata={"foo": "bar"})
    clear_body = sdk_body("update", "chatcmpl-abc", metadata=None)

    assert parse_update_request(set_body) == {"foo": "bar"}
    assert parse_update_request(clear_body) == {}


# --- update bodies ------------------------------------------------------------------------


def test_update_replaces_metadata_with_the_given_map() -> None:
    assert parse_update_request(b'{"metadata": {"foo": "bar"}}') == {"foo": "bar"}


def test_update_with_null_metadata_clears_it() -> None:
    assert parse_update_request(b'{"metadata": null}') == {}


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (b"{}", "metadata", "missing_required_parameter"),
        (b'{"metadata": {}, "model": "x"}', "model", "unknown_parameter"),
        (b'{"foo": 1}', "foo", "unknown_parameter"),
        (b'{"metadata": "x"}', "metadata", "invalid_type"),
        (b'{"metadata": {"a": 1}}', "metadata.a", "invalid_type"),
        (json.dumps({"metadata": {"k" * 65: "v"}}).encode(), "metadata", "string_above_max_length"),
        (
            json.dumps({"metadata": {"k": "v" * 513}}).encode(),
            "metadata.k",
            "string_above_max_length",
        ),
        (
            json.dumps({"metadata": {str(i): "v" for i in range(17)}}).encode(),
            "metadata",
            "object_above_max_properties",
        ),
        (b"[]", None, "invalid_type"),
        (b"{", None, None),
        (b'{"metadata": {"a\\u0000": "v"}}', "metadata", "invalid_value"),
        (b'{"metadata": {"k": "\\u0000"}}', "metadata.k", "invalid_value"),
    ],
)
def test_bad_update_body_is_a_400(body: bytes, param: str | None, code: str | None) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_update_request(body)

    assert (caught.value.param, caught.value.code) == (param, code)
    assert caught.value.status_code == 400


def test_update_unknown_parameter_message() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_update_request(b'{"metadata": {}, "foo": 1}')

    assert caught.value.message == "Unrecognized request argument supplied: foo"


def test_update_missing_metadata_message() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_update_request(b"{}")

    assert caught.value.message == "Missing required parameter: 'metadata'."
