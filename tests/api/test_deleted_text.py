"""Deleted means deleted in the SQLite file: after a delete through the official client, a
purge, or the upgrade that turns on FTS5's secure-delete, none of a completion's words is
left in `chatkeep.db` or its WAL, in the content table or in the search index's segments.

Each word is one token (no hyphen), so the search index keeps it whole, and each test finds
it through search first, so that it was in the index before it went.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

from chatkeep.store.search_index import sqlite_text_sql
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3
from tests.api.keyed import run_cli
from tests.api.test_lifecycle import DAY, USER, purge_at, served, set_policy

WORD = "zyxwvquuxunforgettableword"
ARGUMENT = "qwertyuiopargumentword"


def files_holding(folder: Path, *words: str) -> list[str]:
    files = list(folder.glob("chatkeep.db*"))
    assert files
    return [f"{f.name}: {w}" for f in files for w in words if w.encode() in f.read_bytes()]


def ask(client: openai.OpenAI) -> str:
    """A stored completion with `WORD` in a message and `ARGUMENT` in a tool call's
    arguments, found by searching for each (so both are indexed)."""
    messages: list[dict[str, object]] = [
        {"role": "user", "content": f"my {WORD} here"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "look", "arguments": f'{{"q": "{ARGUMENT}"}}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "nothing found"},
        {"role": "user", "content": "thanks"},
    ]
    gone = client.chat.completions.create(model="m", messages=messages, store=True)  # type: ignore[arg-type]
    for word in (WORD, ARGUMENT):
        found = client.chat.completions.list(extra_query={"search": word}).data
        assert [c.id for c in found] == [gone.id]
    return gone.id


def test_a_deleted_completions_words_are_not_in_the_sqlite_file(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'chatkeep.db'}"
    with served(database_url) as client:
        kept = client.chat.completions.create(model="m", messages=USER, store=True)
        gone = ask(client)
        assert files_holding(tmp_path, WORD, ARGUMENT)  # the probe sees them while stored
        assert client.chat.completions.delete(gone).deleted
        assert files_holding(tmp_path, WORD, ARGUMENT) == []
        # The index still finds what is kept.
        found = client.chat.completions.list(extra_query={"search": "hello"}).data
        assert [c.id for c in found] == [kept.id]


def test_a_purged_completions_words_are_not_in_the_sqlite_file(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'chatkeep.db'}"
    set_policy(database_url, "--content-retention", "1d", "--record-retention", "7d")
    with served(database_url) as client:
        gone = ask(client)
    assert purge_at(database_url, 2 * DAY)["default"].content == 1
    assert files_holding(tmp_path, WORD, ARGUMENT) == []
    with served(database_url) as client:
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve(gone)
        assert client.chat.completions.list(extra_query={"search": WORD}).data == []


def test_the_upgrade_drops_words_deleted_before_it(tmp_path: Path) -> None:
    """A database of the schema before secure-delete, whose index kept a deleted row's
    words (a delete marker, as FTS5 forgot rows then), holds none after `db upgrade`."""
    path = tmp_path / "chatkeep.db"
    database_url = f"sqlite:///{path}"
    asyncio.run(SQLiteStore(path).upgrade(through="0008_import"))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA secure_delete = ON")  # as the store's writer has it
        for rowid, word in ((1, WORD), (2, "hello")):
            conn.execute(
                "INSERT INTO completion_content (rowid, id, project, messages, completion) "
                "VALUES (?, ?, 'default', ?, '{\"choices\": []}')",
                (rowid, f"chatcmpl-{rowid}", f'[{{"role": "user", "content": "my {word}"}}]'),
            )
        conn.execute(  # what the indexer does with the queue
            "INSERT INTO completion_search (rowid, body) SELECT rowid, "
            f"{sqlite_text_sql('completion_content')} FROM completion_content"
        )
        conn.execute("DELETE FROM completion_search_pending")
        conn.execute("DELETE FROM completion_content WHERE rowid = 1")
        assert conn.execute(
            "SELECT rowid FROM completion_search WHERE completion_search MATCH 'my'"
        ).fetchall() == [(2,)]
    finally:
        conn.close()
    assert files_holding(tmp_path, WORD)  # the old index keeps it
    result = run_cli("db", "upgrade", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert files_holding(tmp_path, WORD) == []
    conn = sqlite3.connect(path)
    try:
        found = "SELECT rowid FROM completion_search WHERE completion_search MATCH 'hello'"
        assert conn.execute(found).fetchall() == [(2,)]
    finally:
        conn.close()
