"""`chatkeep logs` and `chatkeep logs show` on both stores, from the database and through a
running server: newest first, filters, `--since`, `-n`, `--json`, and a whole conversation
with its tool calls, answers, usage and metadata."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest

from chatkeep.cli.logs import parse_since
from tests.api.exported import IMAGE_URL, Made, make_completions
from tests.api.keyed import keyed_server, run_cli


def logs(*args: str) -> tuple[int, str, str]:
    result = run_cli("logs", *args)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def made(client: openai.OpenAI) -> Made:
    return make_completions(client)


@pytest.fixture(params=["database", "server"])
def where(request: pytest.FixtureRequest, database_url: str) -> list[str]:
    """The source flags: the test's database, or the server on it."""
    if request.param == "database":
        return ["--database-url", database_url]
    base_url: str = request.getfixturevalue("base_url")
    return ["--url", base_url]


def test_lists_newest_first_with_a_preview(made: Made, where: list[str]) -> None:
    code, out, err = logs(*where)
    assert code == 0, err
    rows = out.splitlines()
    assert [row.split()[0] for row in rows] == made.all()[::-1]
    plain = rows[-1]
    assert "gpt-4o" in plain and "hello → hello" in plain
    assert plain.split()[1].count("-") == 2  # the date, then the time
    tokens = plain.split("  ")[3]
    assert tokens.endswith(" tok") and "+" in tokens
    called = next(row for row in rows if row.startswith(made.tool_call))
    assert "weather in Oslo → [tool calls] get_weather(" in called
    assert "what is this [image] → what is this" in out


def test_filters_count_and_since(made: Made, where: list[str]) -> None:
    def ids(*args: str) -> list[str]:
        code, out, err = logs(*where, *args)
        assert code == 0, err
        return [row.split()[0] for row in out.splitlines()]

    assert ids("-n", "2") == [made.cut, made.developer]
    assert ids("-n", "0") == made.all()[::-1]
    assert ids("--metadata", "env=prod") == [made.cut, made.plain]
    assert ids("-m", "gpt-4o-mini") == []
    assert ids("--since", "1h") == made.all()[::-1]
    assert ids("--since", "2999-01-01") == []
    assert ids("-q", "hello") == [made.plain]
    assert ids("--query", "wor*", "-m", "gpt-4o") == [made.cut]  # "words"
    assert ids("-q", "oslo", "--metadata", "env=prod") == []
    code, _, err = logs(*where, "--since", "2999-01-01")
    assert code == 0 and "No stored completions match." in err


def test_json_lines_are_the_stored_objects(
    made: Made, where: list[str], http: httpx2.Client
) -> None:
    code, out, _ = logs(*where, "--json", "-n", "1")
    assert code == 0
    (line,) = [json.loads(row) for row in out.splitlines()]
    messages = line.pop("messages")
    assert line == http.get(f"/v1/chat/completions/{made.cut}").json()
    assert messages == http.get(f"/v1/chat/completions/{made.cut}/messages").json()["data"]


def test_show_prints_the_whole_conversation(made: Made, where: list[str]) -> None:
    code, out, err = logs("show", made.tool_turns, *where)
    assert code == 0, err
    assert f"id:       {made.tool_turns}" in out
    assert "metadata: none" in out and "tools:    get_weather" in out
    assert "prompt +" in out and "tokens" in out
    assert "user: weather in Paris and Rome?" in out
    assert '  → call_paris get_weather({"city": "Paris"})' in out
    assert "tool [call_rome]: 24 C, clear" in out
    assert "── answer (finish_reason: stop) ──\nassistant: so where is it warmer" in out

    code, out, _ = logs("show", made.two_choices, *where)
    assert "user (ada): pick one" in out
    assert "answer 1 of 2" in out and "answer 2 of 2" in out
    code, out, _ = logs("show", made.image, *where)
    assert f"  [image] {IMAGE_URL}" in out and "metadata: env=dev" in out
    code, out, _ = logs("show", made.tool_call, *where)
    assert "(finish_reason: tool_calls)" in out and "get_weather(" in out


def test_show_json_and_unknown_ids(made: Made, where: list[str]) -> None:
    code, out, _ = logs("show", made.plain, "--json", *where)
    shown = json.loads(out)
    assert shown["id"] == made.plain and shown["metadata"] == {"team": "search", "env": "prod"}
    assert [m["content"] for m in shown["messages"]] == ["Be terse.", "hello"]
    unknown = "chatcmpl-" + "0" * 29
    code, _, err = logs("show", unknown, *where)
    assert code == 1 and f"No stored completion with id '{unknown}'" in err


def test_a_key_sees_only_its_project(database_url: str) -> None:
    with keyed_server(database_url) as (url, callers):
        mine = callers["alpha"].client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "alpha's"}], store=True
        )
        theirs = callers["beta"].client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "beta's"}], store=True
        )
        code, out, _ = logs("--url", url, "--api-key", callers["alpha"].secret)
        assert code == 0 and [row.split()[0] for row in out.splitlines()] == [mine.id]
        code, _, err = logs("show", theirs.id, "--url", url, "--api-key", callers["alpha"].secret)
        assert code == 1 and "No stored completion" in err
        code, out, _ = logs("--database-url", database_url, "--project", "beta")
        assert [row.split()[0] for row in out.splitlines()] == [theirs.id]


@pytest.mark.parametrize(
    ("text", "seconds_before_now"),
    [("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600)],
)
def test_since_takes_spans_back_from_now(text: str, seconds_before_now: int) -> None:
    assert parse_since(text, now=1_000_000_000) == 1_000_000_000 - seconds_before_now


def test_since_takes_dates_in_utc_unless_told() -> None:
    assert parse_since("2026-01-31") == 1769817600
    assert parse_since("2026-01-31T09:30") == 1769817600 + 9.5 * 3600
    assert parse_since("2026-01-31T09:30+01:00") == 1769817600 + 8.5 * 3600
    code, _, err = logs("--since", "yesterday")
    assert code == 2 and "neither a date" in err
