"""Bad inputs to the Responses API: each a 4xx in OpenAI's envelope naming the right
`param`, and nothing stored. What chatkeep cannot serve (built-in tools, `background`,
conversations, prompt templates...) is refused by name, never silently ignored."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from tests.api.test_lifecycle import raw_rows

FN = {"type": "function", "name": "f", "parameters": {"type": "object"}}
M = {"model": "m"}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


# (body, status, param, code or None when any code will do)
CASES: list[tuple[dict[str, Any], int, str | None, str | None]] = [
    ({"input": "x"}, 400, "model", "missing_required_parameter"),
    ({"model": "", "input": "x"}, 400, "model", None),
    ({"model": 3, "input": "x"}, 400, "model", "invalid_type"),
    ({"model": "a\u0000b", "input": "x"}, 400, "model", "invalid_value"),
    ({**M}, 400, "input", "missing_required_parameter"),
    ({**M, "input": []}, 400, "input", "missing_required_parameter"),
    ({**M, "input": 3}, 400, "input", "invalid_type"),
    ({**M, "input": [{"role": "wizard", "content": "x"}]}, 400, "input[0].role", "invalid_value"),
    ({**M, "input": [{"type": "reasoning", "summary": []}]}, 400, "input[0].type", "invalid_value"),
    ({**M, "input": [{"type": "item_reference", "id": "msg_1"}]}, 400, "input[0].type", None),
    ({**M, "input": [{"role": "user"}]}, 400, "input[0].content", "missing_required_parameter"),
    ({**M, "input": ["hi"]}, 400, "input[0]", "invalid_type"),
    (
        {**M, "input": [user([{"type": "input_file", "file_id": "file_1"}])]},
        400,
        "input[0].content[0].type",
        "invalid_value",
    ),
    (
        {**M, "input": [user([{"type": "input_image", "file_id": "file_1", "detail": "auto"}])]},
        400,
        "input[0].content[0].image_url",
        "missing_required_parameter",
    ),
    (
        {**M, "input": [user([{"type": "input_text"}])]},
        400,
        "input[0].content[0].text",
        "missing_required_parameter",
    ),
    (
        {
            **M,
            "input": [{"role": "system", "content": [{"type": "input_image", "image_url": "u"}]}],
        },
        400,
        "input[0].content[0].type",
        "invalid_value",
    ),
    (
        {**M, "input": [{"type": "function_call_output", "output": "x"}]},
        400,
        "input[0].call_id",
        "missing_required_parameter",
    ),
    (
        {**M, "input": [{"type": "function_call", "call_id": "c", "name": "f"}]},
        400,
        "input[0].arguments",
        "missing_required_parameter",
    ),
    ({**M, "input": "x", "tools": [{"type": "web_search"}]}, 400, "tools[0].type", None),
    (
        {**M, "input": "x", "tools": [FN, {"type": "file_search", "vector_store_ids": ["vs"]}]},
        400,
        "tools[1].type",
        "unsupported_value",
    ),
    ({**M, "input": "x", "tools": [{"type": "function"}]}, 400, "tools[0].name", None),
    (
        {**M, "input": "x", "tools": [{"type": "function", "name": "bad name!"}]},
        400,
        "tools[0].name",
        None,
    ),
    ({**M, "input": "x", "tool_choice": "sometimes"}, 400, "tool_choice", "invalid_value"),
    ({**M, "input": "x", "tool_choice": "required"}, 400, "tool_choice", None),
    (
        {**M, "input": "x", "tools": [FN], "tool_choice": {"type": "function", "name": "g"}},
        400,
        "tool_choice.name",
        None,
    ),
    (
        {**M, "input": "x", "tool_choice": {"type": "web_search_preview"}},
        400,
        "tool_choice.type",
        "unsupported_value",
    ),
    ({**M, "input": "x", "text": {"format": {"type": "xml"}}}, 400, "text.format.type", None),
    (
        {**M, "input": "x", "text": {"format": {"type": "json_schema", "name": "r"}}},
        400,
        "text.format.schema",
        "missing_required_parameter",
    ),
    ({**M, "input": "x", "text": {"verbosity": "loud"}}, 400, "text.verbosity", "invalid_value"),
    ({**M, "input": "x", "temperature": 3}, 400, "temperature", None),
    ({**M, "input": "x", "top_p": -1}, 400, "top_p", None),
    ({**M, "input": "x", "max_output_tokens": 5}, 400, "max_output_tokens", None),
    ({**M, "input": "x", "max_output_tokens": "100"}, 400, "max_output_tokens", "invalid_type"),
    ({**M, "input": "x", "metadata": {"k": 1}}, 400, "metadata.k", "invalid_type"),
    (
        {**M, "input": "x", "metadata": {f"k{i}": "v" for i in range(17)}},
        400,
        "metadata",
        None,
    ),
    ({**M, "input": "x", "store": "yes"}, 400, "store", "invalid_type"),
    ({**M, "input": "x", "stream_options": {}}, 400, "stream_options", None),
    ({**M, "input": "x", "background": True}, 400, "background", "unsupported_parameter"),
    ({**M, "input": "x", "conversation": "conv_1"}, 400, "conversation", "unsupported_parameter"),
    ({**M, "input": "x", "prompt": {"id": "pmpt_1"}}, 400, "prompt", "unsupported_parameter"),
    ({**M, "input": "x", "top_logprobs": 5}, 400, "top_logprobs", "unsupported_parameter"),
    ({**M, "input": "x", "include": ["file_search_call.results"]}, 400, "include[0]", None),
    ({**M, "input": "x", "truncation": "auto"}, 400, "truncation", "unsupported_value"),
    ({**M, "input": "x", "reasoning": {"effort": "extreme"}}, 400, "reasoning.effort", None),
    ({**M, "input": "x", "service_tier": "turbo"}, 400, "service_tier", "invalid_value"),
    ({**M, "input": "x", "safety_identifier": "u" * 65}, 400, "safety_identifier", None),
    ({**M, "input": "x", "temprature": 1}, 400, "temprature", "unknown_parameter"),
    ({**M, "input": "x", "previous_response_id": "abc"}, 400, "previous_response_id", None),
    (
        {**M, "input": "x", "previous_response_id": "resp_" + "0" * 48},
        404,
        "previous_response_id",
        "previous_response_not_found",
    ),
]


def _ids(case: tuple[dict[str, Any], int, str | None, str | None]) -> str:
    return f"{case[2]}-{case[3]}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(case) for case in CASES])
def test_bad_create_bodies_are_refused_naming_the_field_and_store_nothing(
    http: httpx2.Client,
    database_url: str,
    case: tuple[dict[str, Any], int, str | None, str | None],
) -> None:
    body, status, param, code = case
    for streamed in (False, True):
        sent = {**body, "stream": True} if streamed and "stream_options" not in body else body
        response = http.post("/v1/responses", json=sent)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["param"] == param, error
        if code is not None:
            assert error["code"] == code, error
        assert error["message"]
    assert raw_rows(database_url, "SELECT count(*) FROM responses") == [(0,)]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'"text"'],
    ids=["malformed", "array", "string"],
)
def test_bodies_that_are_no_object_are_400s(
    http: httpx2.Client, database_url: str, body: bytes
) -> None:
    response = http.post(
        "/v1/responses", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] is None
    assert raw_rows(database_url, "SELECT count(*) FROM responses") == [(0,)]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("order=sideways", "order"),
        ("after=msg_unknown", "after"),
    ],
)
def test_bad_input_item_pages_name_the_query_parameter(
    http: httpx2.Client, query: str, param: str
) -> None:
    created = http.post("/v1/responses", json={**M, "input": "x"}).json()
    response = http.get(f"/v1/responses/{created['id']}/input_items?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_unknown_and_unstreamable_ids(http: httpx2.Client) -> None:
    created = http.post("/v1/responses", json={**M, "input": "x"}).json()
    assert http.get(f"/v1/responses/{created['id']}?stream=true").status_code == 400
    for path in ("/v1/responses/resp_nope", "/v1/responses/resp_nope/input_items"):
        response = http.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["param"] == "response_id"
    assert http.delete("/v1/responses/resp_nope").status_code == 404
    assert http.put(f"/v1/responses/{created['id']}").status_code == 405
