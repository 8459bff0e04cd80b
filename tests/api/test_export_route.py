"""`GET /v1/chatkeep/exports/chat_completions` on both stores: each format against what the
API itself returns and against OpenAI's documented formats, the filters and options, every
bad input as a 400, keys and projects, and completions that have no content to export."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx2
import openai
import pytest

from chatkeep.http.openapi import openapi_document
from tests.api.exported import IMAGE_URL, WEATHER, Made, make_completions
from tests.api.keyed import keyed_server
from tests.api.test_openapi_conformance import SPEC

PATH = "/v1/chatkeep/exports/chat_completions"
needs_spec = pytest.mark.skipif(
    not SPEC.exists() and os.environ.get("CHATKEEP_REQUIRE_OPENAPI") != "1",
    reason=f"the OpenAPI document is not at {SPEC}",
)


def export(http: httpx2.Client, **params: Any) -> list[dict[str, Any]]:
    response = http.get(PATH, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.text == "" or response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


@pytest.fixture
def made(client: openai.OpenAI) -> Made:
    return make_completions(client)


def test_jsonl_is_each_stored_object_with_its_messages(made: Made, http: httpx2.Client) -> None:
    lines = export(http, format="jsonl")
    assert [line["id"] for line in lines] == made.all()  # oldest first, as the list
    for line in lines:
        messages = line.pop("messages")
        assert line == http.get(f"/v1/chat/completions/{line['id']}").json()
        listed = http.get(f"/v1/chat/completions/{line['id']}/messages?limit=100").json()
        assert messages == listed["data"]
    two = next(line for line in lines if line["id"] == made.two_choices)
    assert len(two["choices"]) == 2


@needs_spec
def test_finetune_lines_follow_openais_training_format(made: Made, http: httpx2.Client) -> None:
    from tests.api.openai_formats import FINE_TUNE_CHAT_REQUEST_INPUT, errors, unknown_keys

    lines = export(http, format="openai-finetune")
    assert len(lines) == 8  # seven completions, one of them with two choices
    for line in lines:
        assert errors(FINE_TUNE_CHAT_REQUEST_INPUT, line) == []
        assert unknown_keys(line) == []
        assert line["messages"][-1]["role"] == "assistant"
    plain, first, second, image, called, turns, developer, cut = lines
    assert plain == {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hello"},
        ]
    }
    assert first == second  # n = 2: one example per choice, the same input
    assert first["messages"][0] == {"role": "user", "content": "pick one", "name": "ada"}
    assert image["messages"][0]["content"] == [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": "low"}},
    ]
    answer = called["messages"][-1]
    assert answer["content"] is None and answer["tool_calls"][0]["function"]["name"] == (
        "get_weather"
    )
    assert called["tools"] == [WEATHER] and "parallel_tool_calls" not in called
    # Earlier tool calls and their results are kept; two calls at once show parallel calls.
    assert [m["role"] for m in turns["messages"]] == [
        "user", "assistant", "tool", "tool", "user", "assistant",
    ]  # fmt: skip
    assert turns["messages"][2] == {
        "role": "tool", "content": "18 C, sunny", "tool_call_id": "call_paris",
    }  # fmt: skip
    assert turns["parallel_tool_calls"] is True and turns["tools"] == [WEATHER]
    assert developer["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert cut["messages"][-1]["content"] == "a long"  # kept unless finish_reason=stop


@needs_spec
def test_evals_lines_are_items_with_their_samples(made: Made, http: httpx2.Client) -> None:
    from tests.api.openai_formats import EVAL_JSONL_ITEM, errors

    lines = export(http, format="openai-evals")
    assert len(lines) == 8
    for line in lines:
        assert errors(EVAL_JSONL_ITEM, line) == []
        assert set(line) == {"item", "sample"}
    plain = lines[0]
    assert plain["item"] == {
        "input": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hello"}],
        "completion_id": made.plain,
        "choice_index": 0,
        "metadata": {"team": "search", "env": "prod"},
    }
    sample = plain["sample"]
    assert sample["output_text"] == "hello" and sample["finish_reason"] == "stop"
    assert sample["output"] == [{"role": "assistant", "content": "hello"}]
    assert sample["model"] == "gpt-4o" and sample["usage"]["total_tokens"] > 0
    assert [line["item"]["choice_index"] for line in lines[1:3]] == [0, 1]
    called = lines[4]
    assert called["item"]["tools"] == [WEATHER]
    assert called["sample"]["output_text"] == ""
    assert called["sample"]["output_tools"][0]["function"]["name"] == "get_weather"
    assert lines[-1]["sample"]["finish_reason"] == "length"


def test_filters_and_options(made: Made, http: httpx2.Client) -> None:
    def ids(**params: Any) -> list[str]:
        return [line["id"] for line in export(http, format="jsonl", **params)]

    assert ids(**{"metadata[env]": "prod"}) == [made.plain, made.cut]
    assert ids(**{"metadata[env]": "prod", "metadata[team]": "search"}) == [made.plain]
    assert ids(model="gpt-4o-mini") == []
    assert ids(order="desc") == made.all()[::-1]
    assert ids(after=made.image) == made.all()[3:]
    assert ids(limit=2) == made.all()[:2]
    created = export(http, format="jsonl", limit=1)[0]["created"]
    assert ids(created_after=created - 1, created_before=created + 3600) == made.all()
    assert ids(created_after=created + 3600) == []
    # Tool calls and cut answers did not stop by themselves.
    assert ids(finish_reason="stop") == [made.plain, made.two_choices, made.image,
                                         made.tool_turns, made.developer]  # fmt: skip
    finetune = export(http, format="openai-finetune", limit=2)
    assert len(finetune) == 2  # lines: the plain completion's and the first of two choices
    assert finetune[0]["messages"][-1]["content"] == "hello"
    assert finetune[1]["messages"][0]["name"] == "ada"


def test_sampling_is_deterministic_and_nested(client: openai.OpenAI, http: httpx2.Client) -> None:
    for n in range(40):
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"q{n}"}], store=True
        )

    def ids(rate: float, seed: int, order: str = "asc") -> set[str]:
        lines = export(http, format="jsonl", sample_rate=rate, seed=seed, order=order)
        return {line["id"] for line in lines}

    half = ids(0.5, 7)
    assert 8 <= len(half) <= 32
    assert ids(0.5, 7, "desc") == half  # the same completions, whatever the order
    assert half <= ids(0.8, 7)  # a larger rate keeps a superset
    assert ids(0.5, 8) != half  # another seed, another sample
    assert len(ids(1, 7)) == 40


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ("", "format", "missing_required_parameter"),
        ("format=csv", "format", "invalid_value"),
        ("format=jsonl&limit=0", "limit", "integer_below_min_value"),
        ("format=jsonl&limit=ten", "limit", "invalid_type"),
        ("format=jsonl&sample_rate=0", "sample_rate", "decimal_below_min_value"),
        ("format=jsonl&sample_rate=1.5", "sample_rate", "decimal_above_max_value"),
        ("format=jsonl&sample_rate=nan", "sample_rate", "invalid_type"),
        ("format=jsonl&sample_rate=half", "sample_rate", "invalid_type"),
        ("format=jsonl&seed=x", "seed", "invalid_type"),
        ("format=jsonl&seed=99999999999999999999", "seed", "invalid_value"),
        ("format=jsonl&finish_reason=length", "finish_reason", "invalid_value"),
        ("format=jsonl&order=newest", "order", "invalid_value"),
        ("format=jsonl&after=nope", "after", "invalid_value"),
        ("format=jsonl&metadata=x", "metadata", "invalid_value"),
        ("format=jsonl&created_after=soon", "created_after", "invalid_type"),
        ("format=jsonl&created_before=-5", "created_before", "invalid_value"),
        ("format=jsonl&modle=gpt-4o", "modle", "unknown_parameter"),
        ("format=jsonl&search=%22cat", "search", "invalid_value"),
    ],
)
def test_bad_inputs_are_400s_naming_the_parameter(
    http: httpx2.Client, query: str, param: str, code: str
) -> None:
    response = http.get(f"{PATH}?{query}")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_the_route_needs_a_key_and_exports_only_its_project(database_url: str) -> None:
    with keyed_server(database_url) as (url, callers):
        alpha, beta = callers["alpha"], callers["beta"]
        mine = alpha.client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "alpha's"}], store=True
        )
        beta.client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "beta's"}], store=True
        )
        with httpx2.Client(base_url=url) as anonymous:
            refused = anonymous.get(PATH, params={"format": "jsonl"})
            assert refused.status_code == 401 and "API key" in refused.json()["error"]["message"]
            headers = {"authorization": f"Bearer {alpha.secret}"}
            lines = export_with(anonymous, headers, format="jsonl")
            assert [line["id"] for line in lines] == [mine.id]
            wrong = anonymous.get(
                PATH, params={"format": "jsonl"}, headers={"authorization": "Bearer sk-ck-no"}
            )
            assert wrong.status_code == 401


def export_with(http: httpx2.Client, headers: dict[str, str], **params: Any) -> list[Any]:
    response = http.get(PATH, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def test_the_sdks_low_level_client_reads_it(made: Made, client: openai.OpenAI) -> None:
    raw = client.get(
        "/chatkeep/exports/chat_completions",
        options={"params": {"format": "openai-finetune", "limit": 3}},
        cast_to=httpx2.Response,
    )
    assert raw.headers["content-type"] == "application/x-ndjson"
    assert len(raw.text.splitlines()) == 3


def test_the_document_describes_the_route(made: Made, http: httpx2.Client) -> None:
    operation = openapi_document()["paths"][PATH]["get"]
    names = {p.get("name") or p["$ref"].rsplit("/", 1)[1] for p in operation["parameters"]}
    assert names == {"format", "model", "metadata", "order", "after", "finish_reason", "limit",
                     "sample_rate", "seed", "created_after", "created_before"}  # fmt: skip
    assert "application/x-ndjson" in operation["responses"]["200"]["content"]
    assert {"400", "401", "503"} <= set(operation["responses"])
    # Every parameter the document names is one the route takes (none is a 400).
    response = http.get(PATH, params={
        "format": "jsonl", "model": "gpt-4o", "metadata[env]": "prod", "order": "desc",
        "after": made.cut, "finish_reason": "stop", "limit": 5, "sample_rate": 0.5, "seed": 1,
        "created_after": 0, "created_before": 10**11,
    })  # fmt: skip
    assert response.status_code == 200, response.text
