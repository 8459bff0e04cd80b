"""Every Responses API body validated against the official OpenAPI document's schemas:
created and stored responses, input item lists, deletions, stream events and errors."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from tests.api.test_openapi_conformance import _errors, _spec, pytestmark  # noqa: F401

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}
LONG = " ".join(f"word{i}" for i in range(40))


def _event_schema(kind: str) -> str:
    """The spec's schema for one event type (`response.created`: ResponseCreatedEvent), so
    that a mismatch names its field rather than "not valid under any" of the union."""
    schemas = _spec()["components"]["schemas"]
    for ref in schemas["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].rsplit("/", 1)[1]
        if schemas[name]["properties"]["type"].get("enum") == [kind]:
            return str(name)
    raise AssertionError(f"no event type {kind} in the spec")


def _create(http: httpx2.Client, **body: Any) -> httpx2.Response:
    response = http.post("/v1/responses", json={"model": "gpt-4o", "input": "hi", **body})
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"instructions": "Be brief.", "metadata": {"k": "v"}, "temperature": 0.2, "top_p": 0.9},
        {"tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"}},
        {"tools": [WEATHER], "tool_choice": "required", "parallel_tool_calls": False},
        {"input": LONG, "max_output_tokens": 16},
        {"text": {"format": {"type": "json_object"}, "verbosity": "low"}},
        {
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "r",
                    "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                }
            }
        },
        {"reasoning": {"effort": "low"}, "store": False, "safety_identifier": "u1"},
    ],
)
def test_created_and_stored_responses_match_the_spec(
    http: httpx2.Client, extra: dict[str, Any]
) -> None:
    created = _create(http, **extra).json()
    assert _errors("Response", created) == []
    if created["store"]:
        stored = http.get(f"/v1/responses/{created['id']}").json()
        assert stored == created
        items = http.get(f"/v1/responses/{created['id']}/input_items").json()
        assert _errors("ResponseItemList", items) == []


def test_a_tool_conversation_matches_the_spec(http: httpx2.Client) -> None:
    first = _create(http, input="Rome", tools=[WEATHER], tool_choice="required").json()
    call = first["output"][0]
    second = _create(
        http,
        previous_response_id=first["id"],
        input=[
            {"type": "function_call_output", "call_id": call["call_id"], "output": "warm"},
            {"role": "user", "content": [{"type": "input_text", "text": "and?"}]},
        ],
    ).json()
    assert _errors("Response", second) == []
    items = http.get(f"/v1/responses/{second['id']}/input_items?order=asc").json()
    assert _errors("ResponseItemList", items) == []
    assert [item["type"] for item in items["data"]] == ["function_call_output", "message"]
    # What a client sends back as input (earlier output) is listed in OpenAI's shapes too.
    echoed = _create(
        http,
        input=[
            {"role": "user", "content": "Rome"},
            *first["output"],
            {"role": "assistant", "content": "ok"},
        ],
    ).json()
    listed = http.get(f"/v1/responses/{echoed['id']}/input_items").json()
    assert _errors("ResponseItemList", listed) == []


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"tools": [WEATHER], "tool_choice": "required"},
        {"input": LONG, "max_output_tokens": 16},
    ],
)
def test_stream_events_match_the_spec(http: httpx2.Client, extra: dict[str, Any]) -> None:
    response = _create(http, stream=True, **extra)
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [frame for frame in response.text.split("\n\n") if frame]
    assert frames
    for number, frame in enumerate(frames):
        event_line, data_line = frame.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {event['type']}"
        assert event["sequence_number"] == number
        assert _errors(_event_schema(event["type"]), event) == [], event["type"]


def test_deletions_and_errors_match_the_spec(http: httpx2.Client) -> None:
    created = _create(http).json()
    deleted = http.delete(f"/v1/responses/{created['id']}")
    assert deleted.json() == {"id": created["id"], "object": "response", "deleted": True}
    for response in (
        http.get(f"/v1/responses/{created['id']}"),
        http.get(f"/v1/responses/{created['id']}/input_items"),
        http.post("/v1/responses", json={"model": "m", "input": 3}),
        http.post("/v1/responses", json={"model": "m", "tools": [{"type": "web_search"}]}),
        http.post("/v1/responses", json={"model": "m", "previous_response_id": created["id"]}),
    ):
        assert response.status_code in (400, 404)
        assert _errors("ErrorResponse", response.json()) == []
