"""`search=` on `GET /v1/chat/completions` through the official client, on both stores:
matches with the list's filters and cursors, the export route alike, and a 400 naming
`search` for every query that cannot be run."""

from __future__ import annotations

import httpx2
import openai
import pytest

from tests.api.exported import Made, make_completions
from tests.api.keyed import keyed_server


@pytest.fixture
def made(client: openai.OpenAI) -> Made:
    return make_completions(client)


def found(client: openai.OpenAI, search: str, **kwargs: object) -> list[str]:
    """Every id the SDK's auto-paging yields: its next pages keep the extension."""
    pages = client.chat.completions.list(extra_query={"search": search}, **kwargs)  # type: ignore[arg-type]
    return [c.id for c in pages]


def test_search_finds_prompts_answers_and_tool_calls(client: openai.OpenAI, made: Made) -> None:
    assert found(client, "hello") == [made.plain]  # the prompt, and the echoed answer
    assert found(client, "oslo") == [made.tool_call]
    assert found(client, "rome") == [made.tool_turns]  # a tool call's arguments
    assert found(client, '"18 C"') == [made.tool_turns]  # a tool's answer
    assert found(client, "what is this") == [made.image]  # a content part's text
    assert found(client, "french") == [made.developer]
    assert found(client, "terse hello") == [made.plain]
    assert found(client, "weather") == [made.tool_call, made.tool_turns]
    assert found(client, "nothing-like-this") == []


def test_search_with_filters_order_and_pages(client: openai.OpenAI, made: Made) -> None:
    assert found(client, "weather", order="desc") == [made.tool_turns, made.tool_call]
    assert found(client, "weather", limit=1) == [made.tool_call, made.tool_turns]
    page = client.chat.completions.list(extra_query={"search": "weather"}, limit=1)
    assert page.has_more is True and page.data[0].id == made.tool_call
    assert found(client, "weather", after=made.tool_call) == [made.tool_turns]
    assert found(client, "hello", metadata={"env": "prod"}) == [made.plain]
    assert found(client, "hello", metadata={"env": "dev"}) == []
    assert found(client, "hello", model="gpt-4o") == [made.plain]
    assert found(client, "hello", model="other") == []
    later = client.chat.completions.list(extra_query={"search": "hello", "created_after": 0})
    assert [c.id for c in later] == [made.plain]


def test_a_deleted_completion_is_never_found(client: openai.OpenAI, made: Made) -> None:
    client.chat.completions.delete(made.plain)
    assert found(client, "hello") == []
    assert found(client, "terse") == []


def test_a_key_finds_only_its_projects_completions(database_url: str) -> None:
    with keyed_server(database_url) as (_, callers):
        alpha, beta = callers["alpha"].client, callers["beta"].client
        mine = alpha.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "private needle"}], store=True
        )
        assert found(alpha, "needle") == [mine.id]
        assert found(beta, "needle") == []


def test_the_export_route_takes_search(http: httpx2.Client, made: Made) -> None:
    response = http.get(
        "/v1/chatkeep/exports/chat_completions", params={"format": "jsonl", "search": "oslo"}
    )
    assert response.status_code == 200
    assert [line for line in response.text.splitlines() if line] and made.tool_call in response.text
    assert made.plain not in response.text


@pytest.mark.parametrize(
    ("search", "message", "code"),
    [
        ("", "the query is empty", "invalid_value"),
        ("   ", "the query is empty", "invalid_value"),
        ('"unclosed', "a phrase is not closed", "invalid_value"),
        ('""', "a phrase in quotes is empty", "invalid_value"),
        ("*", "'*' is not a prefix", "invalid_value"),
        ("a-b*", "'a-b*' is not a prefix", "invalid_value"),
        ("pre**", "'pre**' is not a prefix", "invalid_value"),
        ("!!!", "'!!!' holds no letter or digit", "invalid_value"),
        ("ok -", "'-' holds no letter or digit", "invalid_value"),
        ("a\x00b", "NUL character", "invalid_value"),
        (" ".join(["w"] * 17), "too many terms (17)", "invalid_value"),
        ("x" * 1001, "string too long", "string_above_max_length"),
    ],
)
def test_a_query_that_cannot_run_is_a_400_naming_search(
    client: openai.OpenAI, http: httpx2.Client, search: str, message: str, code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.list(extra_query={"search": search})
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["param"] == "search" and error["code"] == code
    assert message in error["message"] and error["message"].startswith("Invalid 'search': ")
    # The export route parses its filters alike.
    exported = http.get(
        "/v1/chatkeep/exports/chat_completions", params={"format": "jsonl", "search": search}
    )
    assert exported.status_code == 400 and exported.json()["error"]["param"] == "search"
