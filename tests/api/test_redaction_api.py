"""Redaction through the official client, on both stores: every built-in detector (cards
checked by Luhn, IPv4 and IPv6, AWS keys, JWTs, bearer tokens, e-mail, phone numbers) in
message content, assistant tool-call arguments, tool outputs and the answer, plain and
streamed. The client is answered with the model's text untouched; the store, lists, message
lists, search, the export route and `chatkeep export` hold only the placeholders.

The policy is set with the real `chatkeep projects set`; `served`, `set_policy` and
`raw_rows` come from test_lifecycle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from tests.api.keyed import run_cli
from tests.api.test_lifecycle import raw_rows, served, set_policy

RULES = ("email", "phone", "card", "secret", "ip")
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
# Each secret of `TEXT` and the placeholder the stored copy has in its place.
SECRETS = {
    "4242 4242 4242 4242": "[CARD]",
    "5555555555554444": "[CARD]",
    "203.0.113.42": "[IP]",
    "2001:db8:85a3::8a2e:370:7334": "[IP]",
    "AKIAIOSFODNN7EXAMPLE": "[SECRET]",
    JWT: "[SECRET]",
    "Zx81Qq9wLmN4tok3n": "[SECRET]",  # the token after `Bearer`
    "ada@example.org": "[EMAIL]",
    "+44 20 7946 0958": "[PHONE]",
}
# Sixteen digits in a card's range that fail the Luhn check: an order number, kept.
NOT_A_CARD = "4242424242424243"
TEMPLATE = (
    "pay with {0} or {1} (order {not_a_card}); the host is {2}, or {3}; "
    "aws_access_key_id={4} token {5} and Authorization: Bearer {6}; "
    "mail {7} or ring {8}."
)
TEXT = TEMPLATE.format(*SECRETS, not_a_card=NOT_A_CARD)
REDACTED = TEMPLATE.format(*SECRETS.values(), not_a_card=NOT_A_CARD)
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"q": {"type": "string"}},
            "required": ["q"],
        },
    },
}


def redacting(database_url: str) -> None:
    set_policy(database_url, *(option for rule in RULES for option in ("--redact", rule)))


def leaked(text: str) -> list[str]:
    """The secrets found in `text`; any case, as PostgreSQL's search vectors lower it."""
    return [secret for secret in SECRETS if secret.lower() in text.lower()]


def every_stored_row(database_url: str) -> str:
    """Every row of every table of the database, as text: the content, the records, the
    search index (SQLite's FTS5 segments, PostgreSQL's `tsvector`s), everything."""
    if database_url.startswith("sqlite"):
        listed = "SELECT name FROM sqlite_master WHERE type = 'table'"
        row = "SELECT * FROM {}"
    else:
        listed = (
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        row = "SELECT t::text FROM {} t"
    tables = [name for (name,) in raw_rows(database_url, listed)]
    assert "completion_content" in tables
    return "\n".join(str(raw_rows(database_url, row.format(f'"{name}"'))) for name in tables)


def assert_nothing_leaked(database_url: str) -> None:
    stored = every_stored_row(database_url)
    assert NOT_A_CARD in stored  # the text is there, with its placeholders
    assert "[SECRET]" in stored
    assert leaked(stored) == []


def searched(client: openai.OpenAI, words: str) -> list[str]:
    quoted = '"' + words.replace('"', "") + '"'
    found = client.chat.completions.list(extra_query={"search": quoted}, limit=100)
    return [completion.id for completion in found.data]


def test_every_detector_redacts_the_stored_copy_and_not_the_answer(database_url: str) -> None:
    with served(database_url) as client:
        # Stored before the policy: the control, whose secrets search does find.
        before = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": TEXT}], store=True
        )
        redacting(database_url)
        answer = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": TEXT}], store=True
        )
        assert answer.choices[0].message.content == TEXT  # the client's answer, untouched
        assert client.chat.completions.retrieve(before.id).choices[0].message.content == TEXT
        stored = client.chat.completions.retrieve(answer.id)
        assert stored.choices[0].message.content == REDACTED
        (shown,) = client.chat.completions.messages.list(answer.id).data
        assert shown.content == REDACTED
        for secret in SECRETS:
            assert searched(client, secret) == [before.id], secret
        assert searched(client, NOT_A_CARD) == [before.id, answer.id]
        client.chat.completions.delete(before.id)
        (listed,) = client.chat.completions.list().data
        assert listed.id == answer.id and listed.choices[0].message.content == REDACTED
    assert_nothing_leaked(database_url)


def test_tool_call_arguments_and_tool_outputs_are_redacted(database_url: str) -> None:
    redacting(database_url)
    arguments = json.dumps({"q": TEXT})
    messages: Any = [
        {"role": "user", "content": "look it up"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": arguments},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "again"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": TEXT},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": TEXT}]},
        {"role": "user", "content": TEXT},
    ]
    with served(database_url) as client:
        answer = client.chat.completions.create(
            model="m", messages=messages, tools=[LOOKUP], tool_choice="required", store=True
        )
        (call,) = answer.choices[0].message.tool_calls or []
        assert call.function.arguments == json.dumps({"q": TEXT}, separators=(",", ":"))  # type: ignore[union-attr]
        stored = client.chat.completions.retrieve(answer.id)
        (kept,) = stored.choices[0].message.tool_calls or []
        # Redacted inside the JSON string: still JSON, with the placeholders in the value.
        assert json.loads(kept.function.arguments) == {"q": REDACTED}  # type: ignore[union-attr]
        shown = [m.to_dict() for m in client.chat.completions.messages.list(answer.id).data]
    assert [m["role"] for m in shown] == ["user", "assistant", "tool", "tool", "user"]
    assert json.loads(shown[1]["tool_calls"][0]["function"]["arguments"]) == {"q": REDACTED}
    assert shown[1]["tool_calls"][1]["function"]["arguments"] == '{"q": "again"}'
    assert shown[2]["content"] == REDACTED and shown[2]["tool_call_id"] == "call_1"
    assert shown[3]["content_parts"] == [{"type": "text", "text": REDACTED}]
    assert shown[4]["content"] == REDACTED
    assert leaked(json.dumps(shown)) == []
    assert_nothing_leaked(database_url)


@pytest.mark.parametrize("tool_call", [False, True], ids=["text", "tool_call"])
def test_a_streamed_answer_carries_the_secrets_and_its_stored_copy_does_not(
    database_url: str, tool_call: bool
) -> None:
    redacting(database_url)
    asked: dict[str, Any] = {"tools": [LOOKUP], "tool_choice": "required"} if tool_call else {}
    with served(database_url) as client:
        stream = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": TEXT}],
            store=True,
            stream=True,
            stream_options={"include_usage": True},
            **asked,
        )
        chunks = list(stream)
        (completion_id,) = {chunk.id for chunk in chunks}
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
        if tool_call:
            pieces = [d.tool_calls[0].function.arguments or "" for d in deltas if d.tool_calls]  # type: ignore[union-attr]
            streamed = json.loads("".join(pieces))["q"]
        else:
            pieces = [d.content or "" for d in deltas]
            streamed = "".join(pieces)
        assert streamed == TEXT  # the client's answer, untouched
        # Some secrets came split over chunks: only the assembled copy can be redacted.
        assert [secret for secret in SECRETS if not any(secret in p for p in pieces)]
        message = client.chat.completions.retrieve(completion_id).choices[0].message
        if tool_call:
            (kept,) = message.tool_calls or []
            assert json.loads(kept.function.arguments) == {"q": REDACTED}  # type: ignore[union-attr]
        else:
            assert message.content == REDACTED
        (shown,) = client.chat.completions.messages.list(completion_id).data
        assert shown.content == REDACTED
    assert_nothing_leaked(database_url)


def test_exports_carry_only_the_redacted_copy(database_url: str, tmp_path: Path) -> None:
    redacting(database_url)
    with served(database_url) as client:
        plain = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": TEXT}], store=True
        )
        called = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": TEXT}],
            tools=[LOOKUP],
            tool_choice="required",
            store=True,
        )
        routed = {}
        for kind in ("jsonl", "openai-finetune", "openai-evals"):
            raw = client.get(
                "/chatkeep/exports/chat_completions",
                options={"params": {"format": kind}},
                cast_to=httpx2.Response,
            )
            routed[kind] = raw.text
    written = {}
    for kind in ("jsonl", "openai-finetune", "openai-evals"):
        output = tmp_path / f"{kind}.jsonl"
        result = run_cli("export", "-f", kind, "-o", str(output), "--database-url", database_url)
        assert result.exit_code == 0, result.output
        written[kind] = output.read_text()
    assert written == routed  # the CLI reads the store as the route does
    lines = [json.loads(line) for line in routed["jsonl"].splitlines()]
    assert [line["id"] for line in lines] == [plain.id, called.id]
    assert lines[0]["choices"][0]["message"]["content"] == REDACTED
    assert lines[0]["messages"][0]["content"] == REDACTED
    arguments = lines[1]["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == {"q": REDACTED}
    for kind, exported in routed.items():
        assert len(exported.splitlines()) == 2, kind
        assert NOT_A_CARD in exported and "[CARD]" in exported, kind
        assert leaked(exported) == [], kind
