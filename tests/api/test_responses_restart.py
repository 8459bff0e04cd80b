"""A tool-call conversation continued through `previous_response_id` across a restart of a
real `chatkeep serve` process: the conversation's state is in the database, not the
process (the reason the Responses API is worth serving from chatkeep)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.api.test_server_process import ServerProcess

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_a_tool_conversation_survives_a_restart(tmp_path: Path, database_url: str) -> None:
    first = ServerProcess(tmp_path, "--database-url", database_url)
    try:
        with first.client() as client:
            opened = client.responses.create(
                model="m",
                input="Lisbon",
                instructions="Use the tool.",
                tools=[WEATHER],
                tool_choice={"type": "function", "name": "get_weather"},
            )
            (call,) = opened.output
            assert call.type == "function_call"
            assert json.loads(call.arguments) == {"city": "Lisbon"}
    finally:
        first.kill()  # no graceful shutdown: what was answered was committed
    second = ServerProcess(tmp_path, "--database-url", database_url)
    try:
        with second.client() as client:
            answered = client.responses.create(
                model="m",
                previous_response_id=opened.id,
                input=[{"type": "function_call_output", "call_id": call.call_id, "output": "19C"}],
                tools=[WEATHER],
            )
            assert answered.output_text == "Lisbon"  # the first turn's input, from the store
            followed = client.responses.create(
                model="m", previous_response_id=answered.id, input="and tomorrow?"
            )
            assert followed.output_text == "and tomorrow?"
            assert client.responses.retrieve(opened.id).output[0].type == "function_call"
            chain = [followed.previous_response_id, answered.previous_response_id]
            assert chain == [answered.id, opened.id]
    finally:
        second.stop()
