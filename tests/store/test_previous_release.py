"""The upgrade from the previous release, on databases that release itself created and filled.

The fixtures (tests/fixtures/previous_release, made by its make_fixtures.py) are a SQLite
file and a pg_dump that chatkeep 4f7fcc2 (migrations 0001-0003, before the data lifecycle)
filled through its own server and CLI, and the JSON that server answered. On both stores,
as an operator would: today's server refuses the database, naming what is pending;
`chatkeep db upgrade` applies it; the documented `chatkeep projects set ...
--content-retention forever` keeps the old text; then today's server, through the official
client and the old API keys, serves every stored completion, list page and message list
exactly as the old server did, finds their words, deletes them and stores new ones.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import openai
import pytest

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.store.schema import MIGRATIONS
from tests.api.keyed import run_cli, sdk
from tests.cli.test_db import execute
from tests.conftest import ThreadedServer, free_port
from tests.postgres_fixtures import run_aside

FIXTURES = Path(__file__).parent.parent / "fixtures" / "previous_release"
PREVIOUS_MIGRATIONS = ["0001_completions", "0002_filter_indexes", "0003_api_keys"]
ALL = [m.name for m in MIGRATIONS]
PENDING = ALL[len(PREVIOUS_MIGRATIONS) :]
PROJECTS = ("default", "alpha", "beta")
# PostgreSQL's partitioned tables after 0004, and their partition keys.
TABLE_KEYS = (
    ("completions", "id"),
    ("completion_content", "id"),
    ("completion_metadata", "completion_id"),
)


@dataclass(frozen=True)
class Previous:
    """A database the previous release filled, and what that release served from it."""

    engine: str
    url: str
    served: dict[str, Any]

    def ids(self, project: str) -> list[str]:
        ids: list[str] = self.served["projects"][project]["ids"]
        return ids

    def secret(self, name: str) -> str:
        secret: str = self.served["keys"][name]["secret"]
        return secret


async def restore(url: str, dump: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(dump)  # several statements: the simple query protocol
    finally:
        await conn.close()


def load_previous(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Previous:
    served = json.loads((FIXTURES / f"{engine}.json").read_text(encoding="utf-8"))
    if engine == "sqlite":
        path = tmp_path / "chatkeep.db"
        shutil.copyfile(FIXTURES / "sqlite.sqlite3", path)
        return Previous(engine, f"sqlite:///{path}", served)
    url: str = request.getfixturevalue("postgres_url")  # a new database, dropped afterwards
    dump = (FIXTURES / "postgres.sql").read_text(encoding="utf-8")
    run_aside(lambda: restore(url, dump))
    return Previous(engine, url, served)


@pytest.fixture(params=["sqlite", "postgres"])
def previous(request: pytest.FixtureRequest, tmp_path: Path) -> Previous:
    return load_previous(request.param, tmp_path, request)


@pytest.fixture
def previous_postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Previous:
    return load_previous("postgres", tmp_path, request)


def upgrade(previous: Previous) -> None:
    """`chatkeep db upgrade`, then each project's text kept forever, as docs/lifecycle.md
    says to before starting the upgraded server (the fixtures' text is older than the
    default 30 days once they are a month old)."""
    upgraded = run_cli("db", "upgrade", "--database-url", previous.url)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"Applied {len(PENDING)} migrations" in upgraded.output
    assert ", ".join(PENDING) in upgraded.output
    for project in PROJECTS:
        kept = run_cli(
            "projects", "set", project, "--content-retention", "forever",
            "--database-url", previous.url,
        )  # fmt: skip
        assert kept.exit_code == 0, kept.output


@contextmanager
def served_today(previous: Previous) -> Iterator[dict[str, openai.OpenAI]]:
    """Today's server on the upgraded database; an official client per old project key."""
    app = create_app(Settings(database_url=previous.url))
    with ThreadedServer(app) as base, ExitStack() as stack:
        yield {p: stack.enter_context(sdk(base, previous.secret(p))) for p in PROJECTS}


def raw(response: Any) -> Any:
    """The JSON the server sent, from a `with_raw_response` call of the official client."""
    return json.loads(response.text)


def test_the_previous_release_database_is_refused_until_db_upgrade(previous: Previous) -> None:
    refused = run_cli("serve", "--port", str(free_port()), "--database-url", previous.url)
    assert refused.exit_code == 1
    (line,) = refused.output.strip().splitlines()
    assert "older than this version" in line and "`chatkeep db upgrade`" in line
    assert ", ".join(PENDING) in line

    status = run_cli("db", "status", "--database-url", previous.url)
    assert status.exit_code == 0, status.output
    assert all(f"applied  {name}" in status.output for name in PREVIOUS_MIGRATIONS)
    assert all(f"pending  {name}" in status.output for name in PENDING)

    upgrade(previous)

    status = run_cli("db", "status", "--database-url", previous.url)
    assert "pending" not in status.output and "up to date" in status.output


def test_every_stored_completion_is_served_as_the_previous_release_served_it(
    previous: Previous,
) -> None:
    upgrade(previous)
    with served_today(previous) as clients:
        for project, client in clients.items():
            old = previous.served["projects"][project]
            completions = client.chat.completions.with_raw_response
            assert raw(completions.list(limit=100)) == old["list"]
            for completion_id in old["ids"]:
                assert raw(completions.retrieve(completion_id)) == old["retrieved"][completion_id]
                messages = client.chat.completions.messages.with_raw_response
                listed = raw(messages.list(completion_id, limit=100))
                assert listed == old["messages"][completion_id]
            for recorded in old["queries"]:
                assert raw(completions.list(**recorded["query"])) == recorded["page"], recorded

        # What the old server had deleted, or never stored, stays unknown.
        alpha, beta = clients["alpha"], clients["beta"]
        for gone in (previous.served["deleted"], previous.served["unstored"]):
            with pytest.raises(openai.NotFoundError):
                alpha.chat.completions.retrieve(gone["id"])
        # Each old key still reaches its own project only.
        with pytest.raises(openai.NotFoundError):
            beta.chat.completions.retrieve(previous.ids("alpha")[0])
        assert [c.id for c in beta.chat.completions.list(metadata={"user": "ada"})] == [
            previous.ids("beta")[0]
        ]


def test_old_keys_authenticate_and_the_revoked_one_stays_refused(previous: Previous) -> None:
    upgrade(previous)
    with served_today(previous) as clients, ExitStack() as stack:
        base_url = str(clients["alpha"].base_url)
        revoked = stack.enter_context(
            openai.OpenAI(api_key=previous.secret("revoked"), base_url=base_url, max_retries=0)
        )
        with pytest.raises(openai.AuthenticationError):
            revoked.chat.completions.list()
        assert [c.id for c in clients["alpha"].chat.completions.list()] == previous.ids("alpha")

    keys = run_cli("keys", "list", "--database-url", previous.url)
    assert keys.exit_code == 0, keys.output
    for name in ("default", "alpha", "beta", "revoked"):
        assert previous.served["keys"][name]["id"] in keys.output


def search(client: openai.OpenAI, query: str) -> list[str]:
    page = client.chat.completions.list(extra_query={"search": query})
    return [c.id for c in page]


def test_old_completions_are_searched_deleted_and_joined_by_new_ones(previous: Previous) -> None:
    upgrade(previous)
    default_ids, alpha_ids, beta_ids = (previous.ids(p) for p in PROJECTS)
    parts_id, tool_call_id, tool_result_id, streamed_id = alpha_ids
    with served_today(previous) as clients:
        alpha = clients["alpha"]
        # Words of the old text, indexed by the upgrade: a message, a content part, a tool
        # result, a tool call's arguments, a streamed create, non-ASCII text.
        assert search(clients["default"], "lighthouse") == [default_ids[0]]
        assert search(clients["default"], "café 東京") == [default_ids[1]]
        assert search(alpha, "heron") == [parts_id]
        assert search(alpha, "Sunny degrees") == [tool_result_id]
        assert search(alpha, "celsius") == [tool_result_id]
        assert search(alpha, "Lisbon") == [tool_call_id, tool_result_id]
        assert search(alpha, "haiku tides") == [streamed_id]
        assert search(clients["beta"], "Portuguese") == [beta_ids[0]]
        # Never findable: what the old server deleted or did not store, another project's.
        assert search(alpha, "marmalade") == search(alpha, "quinces") == []
        assert search(alpha, "Portuguese") == []

        new = alpha.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Another heron, after the upgrade"}],
            store=True,
            metadata={"env": "prod", "user": "ada"},
        )
        assert search(alpha, "heron") == [parts_id, new.id]
        filtered = alpha.chat.completions.list(metadata={"user": "ada", "env": "prod"})
        assert [c.id for c in filtered] == [parts_id, streamed_id, new.id]

        deleted = alpha.chat.completions.delete(parts_id)
        assert deleted.deleted and deleted.id == parts_id
        with pytest.raises(openai.NotFoundError):
            alpha.chat.completions.retrieve(parts_id)
        assert search(alpha, "heron") == [new.id]
        assert [c.id for c in alpha.chat.completions.list()] == [*alpha_ids[1:], new.id]

        updated = alpha.chat.completions.update(tool_call_id, metadata={"user": "grace2"})
        assert updated.metadata == {"user": "grace2"}
        assert [c.id for c in alpha.chat.completions.list(metadata={"user": "grace"})] == [
            tool_result_id
        ]


def stored_completions(previous: Previous) -> dict[str, dict[str, Any]]:
    """Every completion the previous release stored, as it served it, by id."""
    return {
        completion_id: completion
        for project in PROJECTS
        for completion_id, completion in previous.served["projects"][project]["retrieved"].items()
    }


def test_records_get_the_usage_and_finish_reasons_of_the_old_completions(
    previous: Previous,
) -> None:
    """What 0004 copies into the slim records, which outlive the content (and its text)."""
    upgrade(previous)
    rows = execute(previous.url, "SELECT id, usage, finish_reasons FROM completions")
    records = {row[0]: (json.loads(row[1]), json.loads(row[2])) for row in rows}
    assert records == {
        completion_id: (served["usage"], [choice["finish_reason"] for choice in served["choices"]])
        for completion_id, served in stored_completions(previous).items()
    }
    assert {reasons[0] for _, reasons in records.values()} == {"stop", "tool_calls", "length"}


def test_postgres_upgrade_moves_the_rows_into_day_partitions(
    previous_postgres: Previous,
) -> None:
    previous = previous_postgres
    upgrade(previous)
    created = {id_: served["created"] for id_, served in stored_completions(previous).items()}

    for table, key in TABLE_KEYS:
        kind = execute(
            previous.url, "SELECT relkind::text FROM pg_class WHERE oid = $1::regclass", table
        )
        assert kind == [("p",)], f"{table} is not partitioned"
        rows = execute(
            previous.url, f"SELECT DISTINCT {key}, tableoid::regclass::text FROM {table}"
        )
        assert {row[0] for row in rows} == set(created), table
        for completion_id, leaf in rows:
            day = datetime.fromtimestamp(created[completion_id], UTC).date()
            assert leaf == f"{table}_d{day:%Y%m%d}", (table, completion_id, leaf)
    leftovers = execute(previous.url, "SELECT relname FROM pg_class WHERE relname LIKE '%0003%'")
    assert leftovers == [], "the tables of 0003 are left behind"
