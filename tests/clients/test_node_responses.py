"""The official Node SDK's Responses API against a real server, on both stores: create, a
tool loop through `previous_response_id`, the stream helper, retrieve, input items, delete."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.clients.test_node_sdk import HERE, _node_sdk_missing


def test_node_sdk_responses(base_url: str) -> None:
    missing = _node_sdk_missing()
    if missing:
        if os.environ.get("CHATKEEP_REQUIRE_NODE_SDK") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    result = subprocess.run(
        ["node", str(HERE / "responses_check.mjs"), f"{base_url}/v1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "created": "hello from node",
        "call": ["function_call", "get_weather", "Berlin"],
        "streamed": ["Berlin", "Berlin"],
        "ordered": True,
        "retrieved": "Berlin",
        "items": ["function_call_output"],
        "brokenChain": [404, "previous_response_not_found"],
        "badRequest": [400, "tools[0].type"],
    }
