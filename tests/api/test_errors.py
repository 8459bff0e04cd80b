"""Bad input: each answered with a 4xx in OpenAI's envelope naming the offending param."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

OK = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}

# (create kwargs for the official client, expected param)
BAD_CREATES: list[tuple[dict[str, Any], str | None]] = [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "bogus", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    (
        {"messages": [{"role": "user", "content": [{"type": "video", "x": 1}]}]},
        "messages[0].content[0].type",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
        "messages[0].content[0].text",
    ),
    (
        {
            "messages": [
                {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}
            ]
        },
        "messages[0].content[0].type",
    ),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "assistant"}]}, "messages[0].content"),
    ({"messages": "hello"}, "messages"),
    ({"messages": ["hello"]}, "messages[0]"),
    ({"model": 5}, "model"),
    ({"temperature": 2.1}, "temperature"),
    ({"temperature": -0.1}, "temperature"),
    ({"temperature": "hot"}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"n": 0}, "n"),
    ({"n": 129}, "n"),
    ({"n": "2"}, "n"),
    ({"n": True}, "n"),
    ({"n": 1.5}, "n"),
    ({"presence_penalty": 2.5}, "presence_penalty"),
    ({"frequency_penalty": -3}, "frequency_penalty"),
    ({"seed": 2**63}, "seed"),
    ({"seed": -(2**63) - 1}, "seed"),
    ({"seed": 10**30}, "seed"),
    ({"seed": "42"}, "seed"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": 5}, "stop"),
    ({"logit_bias": {"50256": 101}}, "logit_bias.50256"),
    ({"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"max_tokens": "many"}, "max_tokens"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ({"metadata": {"k" * 65: "v"}}, "metadata"),
    ({"metadata": {"k": "v" * 513}}, "metadata.k"),
    ({"metadata": {"k": 1}}, "metadata.k"),
    ({"metadata": "tag"}, "metadata"),
    (
        {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
        "tools[0].function.name",
    ),
    ({"tools": [{"type": "function"}]}, "tools[0].function"),
    ({"tools": [{"type": "plugin", "plugin": {}}]}, "tools[0].type"),
    ({"tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice"),
    ({"response_format": {"type": "yaml"}}, "response_format.type"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    ({"store": "yes"}, "store"),
    ({"stream": "yes"}, "stream"),
    ({"user": 7}, "user"),
    ({"service_tier": "platinum"}, "service_tier"),
    ({"model": ""}, "model"),
    # Text no store can keep, refused on every create (stored or not).
    ({"model": "m\x00"}, "model"),
    ({"metadata": {"a\x00b": "v"}}, "metadata"),
    ({"metadata": {"k": "a\x00b"}}, "metadata.k"),
    # Cross-field rules.
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
    (
        {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "g"}}},
        "tool_choice",
    ),
    ({"tools": [TOOL], "tool_choice": {"type": "custom", "custom": {"name": "f"}}}, "tool_choice"),
    ({"parallel_tool_calls": False}, "parallel_tool_calls"),
    ({"function_call": {"name": "f"}}, "function_call"),
    ({"functions": [{"name": "f"}], "function_call": {"name": "g"}}, "function_call"),
]


@pytest.mark.parametrize(
    ("kwargs", "param"), BAD_CREATES, ids=[p or "none" for _, p in BAD_CREATES]
)
def test_bad_create_is_a_400_naming_the_param(
    client: openai.OpenAI, kwargs: dict[str, Any], param: str | None
) -> None:
    body: dict[str, Any] = {"model": "m", "messages": OK} | kwargs
    model, messages = body.pop("model"), body.pop("messages")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=messages, extra_body=body)
    error = caught.value
    assert error.status_code == 400
    assert set(error.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]
    assert error.type == "invalid_request_error" and error.message
    assert error.param == param
    assert error.response.headers["x-should-retry"] == "false"
    assert error.request_id and error.request_id.startswith("req_")


def test_missing_required_fields(http: httpx2.Client) -> None:
    for body, param in (({"messages": OK}, "model"), ({"model": "m"}, "messages")):
        response = http.post("/v1/chat/completions", json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["param"] == param and error["code"] == "missing_required_parameter"


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'"text"', b'{"model": NaN}'])
def test_malformed_or_non_object_bodies(http: httpx2.Client, content: bytes) -> None:
    response = http.post(
        "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


# A 19-digit integer sends a body through the standard library's decoder, which (unlike
# orjson) lets an unpaired surrogate escape through: it must be refused as orjson would.
LONE_SURROGATE = (
    '{"model":"m","seed":%s,"store":%s,"messages":[{"role":"user","content":"a\\ud800"}]}'
)


@pytest.mark.parametrize("seed", ["1", "1234567890123456789"])
@pytest.mark.parametrize("store", ["false", "true"])
def test_an_unpaired_surrogate_is_not_json_on_either_decoder(
    http: httpx2.Client, seed: str, store: str
) -> None:
    body = LONE_SURROGATE % (seed, store)
    response = http.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "could not parse the JSON body" in response.json()["error"]["message"]
    assert http.get("/v1/chat/completions").json()["data"] == []


def test_over_large_body_is_413(http: httpx2.Client) -> None:
    huge = "x" * (300 * 1024)  # the test settings allow 256 KiB
    response = http.post(
        "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": huge}]}
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_unknown_route_and_wrong_method_use_the_envelope(http: httpx2.Client) -> None:
    missing = http.get("/v1/nothing/here")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Invalid URL (GET /v1/nothing/here)."
    assert missing.headers["x-request-id"].startswith("req_")
    wrong = http.put("/v1/chat/completions", json={})
    assert wrong.status_code == 405
    assert set(wrong.json()["error"]) == {"message", "type", "param", "code"}
    assert wrong.headers["content-type"] == "application/json"


def test_update_without_metadata_is_missing_parameter(
    client: openai.OpenAI, http: httpx2.Client
) -> None:
    completion = client.chat.completions.create(model="m", messages=OK, store=True)
    response = http.post(f"/v1/chat/completions/{completion.id}", json={})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "metadata"
    assert response.json()["error"]["code"] == "missing_required_parameter"
    unknown = http.post(
        f"/v1/chat/completions/{completion.id}", json={"metadata": {}, "model": "x"}
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "model"


def test_unknown_ids_are_404_in_the_envelope(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.retrieve("chatcmpl-does-not-exist")
    assert caught.value.code is None and caught.value.type == "invalid_request_error"


NUL_FIELDS = [
    pytest.param({"model": "m\x00"}, "model", id="model"),
    pytest.param({"metadata": {"a\x00b": "v"}}, "metadata", id="metadata-key"),
    pytest.param({"metadata": {"k": "a\x00b"}}, "metadata.k", id="metadata-value"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("store", [True, False], ids=["stored", "unstored"])
@pytest.mark.parametrize(("fields", "param"), NUL_FIELDS)
def test_nul_in_a_stored_text_field_is_refused_before_any_answer(
    client: openai.OpenAI, fields: dict[str, Any], param: str, store: bool, stream: bool
) -> None:
    body: dict[str, Any] = {"model": "m", "messages": OK, "store": store, "stream": stream}
    body |= fields
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**body)
    error = caught.value
    assert (error.status_code, error.type, error.param) == (400, "invalid_request_error", param)
    assert error.code == "invalid_value"
    assert "NUL character (U+0000)" in error.message
    assert client.chat.completions.list().data == []


@pytest.mark.parametrize(
    ("metadata", "param"),
    [({"a\x00b": "v"}, "metadata"), ({"k": "a\x00b"}, "metadata.k")],
    ids=["key", "value"],
)
def test_nul_in_a_metadata_update_is_refused_and_nothing_changes(
    client: openai.OpenAI, metadata: dict[str, str], param: str
) -> None:
    completion = client.chat.completions.create(
        model="m", messages=OK, store=True, metadata={"team": "a"}
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.update(completion.id, metadata=metadata)
    assert (caught.value.param, caught.value.code) == (param, "invalid_value")
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["message"] == (
        f"Invalid '{param}': {'key' if param == 'metadata' else 'string'} contains a NUL "
        "character (U+0000), which cannot be stored."
    )
    assert client.chat.completions.retrieve(completion.id).metadata == {"team": "a"}


def test_a_tool_choice_naming_an_undeclared_function_is_refused(client: openai.OpenAI) -> None:
    # The echo model used to call the undeclared function; now nothing is answered at all.
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="m",
            messages=OK,
            tools=[TOOL],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "nowhere"}},
            store=True,
        )
    assert caught.value.param == "tool_choice"
    assert "'nowhere'" in caught.value.message
    assert client.chat.completions.list().data == []
