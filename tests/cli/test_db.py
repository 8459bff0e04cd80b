"""`chatkeep db status | upgrade`, and `chatkeep serve` refusing a schema it does not match.

On both engines, each test on a database of its own: an operator with a database from the
first released schema sees what is pending, upgrades it with one command and keeps the
data; a server never starts on a schema that is behind or ahead, and says what to do.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import CliRunner

from chatkeep.cli.main import cli
from chatkeep.config import Settings
from chatkeep.protocol.queries import ListQuery
from chatkeep.store.factory import open_store
from chatkeep.store.schema import MIGRATIONS, for_sqlite
from chatkeep.store.sqlite_driver import sqlite3
from tests.conftest import free_port

ALL = [m.name for m in MIGRATIONS]
FIRST = ALL[0]
OLD_ID = "chatcmpl-0000000000AAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL of its own for the test, with nothing in it yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'chatkeep.db'}"
    postgres: str = request.getfixturevalue("blank_postgres_url")
    return postgres


def execute(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """One `$n`-style statement on the database, around chatkeep; returns its rows."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            return [tuple(row) for row in conn.execute(for_sqlite(sql), params)]
        finally:
            conn.close()

    async def on_postgres() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return [tuple(row) for row in await conn.fetch(sql, *params)]
        finally:
            await conn.close()

    return asyncio.run(on_postgres())


def first_release_database(url: str) -> None:
    """What the first released chatkeep left behind: its schema, and one completion."""
    asyncio.run(open_store(Settings(database_url=url)).upgrade(through=FIRST))
    execute(
        url,
        "INSERT INTO completions (project, id, model, created, completion, metadata, messages) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        "default", OLD_ID, "gpt-4o", 1_700_000_000,
        f'{{"id": "{OLD_ID}", "object": "chat.completion", "seed": 4944116822809979520}}',
        '{"env": "prod", "team": "search"}', '[{"role": "user", "content": "hi"}]',
    )  # fmt: skip


def chatkeep(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_a_first_release_database_is_upgraded_by_the_cli_and_keeps_its_data(url: str) -> None:
    first_release_database(url)

    code, before = chatkeep("db", "status", "--database-url", url)
    assert code == 0, before
    assert f"applied  {FIRST}" in before
    assert all(f"pending  {name}" in before for name in ALL[1:])
    assert "chatkeep db upgrade" in before

    code, upgraded = chatkeep("db", "upgrade", "--database-url", url)
    assert code == 0, upgraded
    assert f"Applied {len(ALL) - 1} migrations" in upgraded and ", ".join(ALL[1:]) in upgraded

    code, after = chatkeep("db", "status", "--database-url", url)
    assert code == 0 and "pending" not in after and "up to date" in after
    assert chatkeep("db", "upgrade", "--database-url", url)[1].endswith("nothing to apply.\n")

    async def old_completion_is_served() -> list[dict[str, Any]]:
        store = open_store(Settings(database_url=url))
        await store.open()
        try:
            query = ListQuery(metadata={"team": "search", "env": "prod"}, model="gpt-4o")
            return await store.list("default", query)
        finally:
            await store.close()

    (served,) = asyncio.run(old_completion_is_served())
    assert served["id"] == OLD_ID and served["seed"] == 4944116822809979520
    assert served["metadata"] == {"env": "prod", "team": "search"}


def test_status_of_a_blank_database_says_serve_creates_the_schema(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).touch()  # blank: there, and empty
    code, output = chatkeep("db", "status", "--database-url", url)

    assert code == 0, output
    assert all(f"pending  {name}" in output for name in ALL)
    assert "blank" in output and "chatkeep serve" in output


def test_a_newer_schema_is_named_and_left_alone(url: str) -> None:
    asyncio.run(open_store(Settings(database_url=url)).upgrade())
    execute(url, "INSERT INTO chatkeep_migrations (name) VALUES ($1)", "9999_from_the_future")

    for command in ("status", "upgrade"):
        code, output = chatkeep("db", command, "--database-url", url)
        assert code == 1
        assert "newer than this version" in output and "9999_from_the_future" in output
    recorded = execute(url, "SELECT name FROM chatkeep_migrations ORDER BY name")
    assert [row[0] for row in recorded] == [*ALL, "9999_from_the_future"]


def serve_process(workdir: Path, url: str) -> subprocess.CompletedProcess[str]:
    """`chatkeep serve` as a real process, expected to refuse to start (bounded in time)."""
    return subprocess.run(
        [sys.executable, "-m", "chatkeep", "serve", "--port", str(free_port()),
         "--database-url", url],
        cwd=workdir, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_serve_refuses_a_schema_that_is_behind_naming_the_command(url: str, tmp_path: Path) -> None:
    first_release_database(url)

    refused = serve_process(tmp_path, url)

    assert refused.returncode != 0
    (line,) = refused.stderr.strip().splitlines()  # one line, no traceback
    assert "older than this version" in line and "`chatkeep db upgrade`" in line
    assert ", ".join(ALL[1:]) in line
    # Nothing was changed on the way: the operator decides when to upgrade.
    assert [row[0] for row in execute(url, "SELECT name FROM chatkeep_migrations")] == [FIRST]


def test_serve_refuses_a_schema_that_is_ahead(url: str) -> None:
    asyncio.run(open_store(Settings(database_url=url)).upgrade())
    execute(url, "INSERT INTO chatkeep_migrations (name) VALUES ($1)", "9999_from_the_future")

    code, output = chatkeep("serve", "--port", str(free_port()), "--database-url", url)

    assert code == 1
    (line,) = output.strip().splitlines()
    assert "newer than this version" in line and "Upgrade chatkeep" in line


def test_unreachable_databases_are_one_line_without_the_password(
    postgres_admin_url: str, tmp_path: Path
) -> None:
    missing = postgres_admin_url.rsplit("/", 1)[0].replace("@", ":hunter2@", 1)
    unreachable = "postgresql://chatkeep:hunter2@127.0.0.1:1/chatkeep"
    port = str(free_port())
    for bad in (f"{missing}/no_such_database", unreachable):
        for args in (("db", "status"), ("db", "upgrade"), ("serve", "--port", port)):
            code, output = chatkeep(*args, "--database-url", bad)
            assert code == 1, output
            # `db status` names its database first; then the error, on one line.
            error = output.removeprefix(f"database: {bad.replace(':hunter2@', ':***@')}\n")
            assert error.startswith("Error: ") and error.count("\n") == 1, output
            assert "hunter2" not in output and ":***@" in output
    refused = serve_process(tmp_path, unreachable)
    assert refused.returncode != 0 and "hunter2" not in refused.stderr + refused.stdout
    assert refused.stderr.startswith("Error: ") and "Traceback" not in refused.stderr
    assert "database: postgresql://chatkeep:***@127.0.0.1:1/chatkeep" in refused.stderr


@pytest.mark.parametrize("command", [("db", "status"), ("keys", "list"), ("keys", "revoke", "k")])
def test_read_only_commands_never_create_a_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    """Run from the wrong folder, they say so instead of making an empty database there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHATKEEP_DATABASE_URL", raising=False)
    code, output = chatkeep(*command)
    assert code == 1
    assert f"database: SQLite file {tmp_path / 'chatkeep.db'}" in output
    assert f"No database at {tmp_path / 'chatkeep.db'}: nothing was created" in output
    assert list(tmp_path.iterdir()) == []


def test_start_up_says_what_failed_to_connect(tmp_path: Path) -> None:
    """Not "try again shortly": a refused port, a missing folder, a folder named as the file."""
    refused = "postgresql://chatkeep:hunter2@127.0.0.1:1/chatkeep"
    port = str(free_port())
    for args in (("db", "upgrade"), ("serve", "--port", port)):
        code, output = chatkeep(*args, "--database-url", refused)
        assert code == 1
        assert "connection refused at 127.0.0.1:1" in output and "try again" not in output
    cases = {
        "sqlite:///no/such/folder/chatkeep.db": "the folder {cwd}/no/such/folder does not exist",
        f"sqlite:///{tmp_path}": "that path is a folder",
        f"sqlite:///{tmp_path}/file/x.db": f"{tmp_path}/file is not a folder",
    }
    (tmp_path / "file").write_text("")
    for url, reason in cases.items():
        code, output = chatkeep("serve", "--port", port, "--database-url", url)
        assert code == 1
        assert reason.format(cwd=Path.cwd()) in output, output
        assert f"Cannot open the SQLite database {Path(url[10:]).absolute()}" in output
