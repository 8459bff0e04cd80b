"""The official Node SDK's Responses API against a real server, on both stores: create, a
tool loop through `previous_response_id`, the stream helper, retrieve, input items, delete."""

from __future__ import annotations

from tests.clients.node import run_node_check


def test_node_sdk_responses(base_url: str) -> None:
    assert run_node_check("responses_check.mjs", base_url) == {
        "created": "hello from node",
        "call": ["function_call", "get_weather", "Berlin"],
        "streamed": ["Berlin", "Berlin"],
        "ordered": True,
        "retrieved": "Berlin",
        "items": ["function_call_output"],
        "brokenChain": [404, "previous_response_not_found"],
        "badRequest": [400, "tools[0].type"],
    }
