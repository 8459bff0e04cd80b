"""`chatkeep keys create | list | revoke` on real databases (a SQLite file, PostgreSQL):
what an operator sees, and what a stolen database would give away (nothing usable)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.service.keys import hash_key
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3
from tests.api.keyed import create_key, run_cli, sdk
from tests.conftest import ThreadedServer

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def raw_rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            return [tuple(row) for row in conn.execute(sql)]
        finally:
            conn.close()

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(database_url)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_create_prints_the_key_once_and_the_database_keeps_only_its_hash(
    database_url: str,
) -> None:
    args = ["keys", "create", "--project", "alpha", "--database-url", database_url]
    first = run_cli(*args, "--name", "ci runner")
    assert first.exit_code == 0
    secret = first.stdout.strip()
    assert first.stdout == secret + "\n"  # alone on stdout: KEY=$(chatkeep keys create ...)
    assert re.fullmatch(r"sk-ck-[0-9A-Za-z]{40}", secret)
    assert re.search(r"Created API key key_\w+ for project 'alpha'", first.stderr)
    assert "shown only this once" in first.stderr
    assert "first key in this database" in first.stderr
    second = run_cli(*args)
    assert second.exit_code == 0 and second.stdout.strip() != secret
    assert "first key" not in second.stderr

    rows = raw_rows(database_url, "SELECT * FROM api_keys")
    assert len(rows) == 2
    dumped = repr(rows)
    assert secret not in dumped and secret[10:] not in dumped
    assert hash_key(secret) in dumped  # what a request is checked against
    assert secret[:10] in dumped  # the display prefix: 4 random characters of 40


def test_a_sqlite_file_never_holds_the_secret(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    _, secret = create_key(url, "alpha")
    files = list(tmp_path.glob("keys.db*"))
    assert files
    for file in files:
        assert secret[6:].encode() not in file.read_bytes()


def test_list_shows_every_key_and_never_a_secret(database_url: str) -> None:
    alpha_id, alpha_secret = create_key(database_url, "alpha", name="ci")
    beta_id, beta_secret = create_key(database_url, "beta")
    assert run_cli("keys", "revoke", beta_id, "--database-url", database_url).exit_code == 0

    listed = run_cli("keys", "list", "--database-url", database_url)
    assert listed.exit_code == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "PROJECT", "NAME", "KEY", "CREATED", "LAST", "USED", "REVOKED"]
    by_id = {row.split()[0]: row for row in rows}
    alpha_prefix, beta_prefix = re.escape(alpha_secret[:10]), re.escape(beta_secret[:10])
    alpha_row = rf"{alpha_id}\s+alpha\s+ci\s+{alpha_prefix}\.\.\.\s+{TIME}\s+never\s+-"
    beta_row = rf"{beta_id}\s+beta\s+-\s+{beta_prefix}\.\.\.\s+{TIME}\s+never\s+{TIME}"
    assert re.fullmatch(alpha_row, by_id.pop(alpha_id))
    assert re.fullmatch(beta_row, by_id.pop(beta_id))
    assert by_id == {}
    for secret in (alpha_secret, beta_secret):
        assert secret not in listed.output and secret[10:] not in listed.output

    only_beta = run_cli("keys", "list", "--project", "beta", "--database-url", database_url)
    assert [line.split()[0] for line in only_beta.stdout.splitlines()] == ["ID", beta_id]


def existing(database_url: str) -> str:
    """The database, made to exist: a SQLite file is made empty (PostgreSQL's is there)."""
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).touch()
    return database_url


def test_list_of_an_empty_database_says_how_to_make_a_key(database_url: str) -> None:
    existing(database_url)
    listed = run_cli("keys", "list", "--database-url", database_url)
    assert listed.exit_code == 0 and listed.stdout == ""
    assert "chatkeep keys create --project NAME" in listed.stderr


def test_list_shows_when_a_key_was_last_used(database_url: str) -> None:
    key_id, secret = create_key(database_url, "alpha")
    app = create_app(Settings(database_url=database_url))
    with ThreadedServer(app) as url, sdk(url, secret) as client:
        client.models.list()
    # The server wrote the time in the background, at the latest when it stopped.
    listed = run_cli("keys", "list", "--database-url", database_url)
    assert re.search(rf"{key_id}\s.*\s{TIME}\s+{TIME}\s+-$", listed.stdout, re.M), listed.stdout


def test_revoke_keeps_the_key_listed_and_is_idempotent(database_url: str) -> None:
    key_id, _ = create_key(database_url, "alpha")
    revoked = run_cli("keys", "revoke", key_id, "--database-url", database_url)
    assert revoked.exit_code == 0
    assert re.match(
        rf"API key {key_id} of project 'alpha' is revoked \(since {TIME}\)", revoked.stdout
    )
    since = re.search(TIME, revoked.stdout).group(0)  # type: ignore[union-attr]
    again = run_cli("keys", "revoke", key_id, "--database-url", database_url)
    assert again.exit_code == 0 and f"(since {since})" in again.stdout
    assert key_id in run_cli("keys", "list", "--database-url", database_url).stdout


def test_revoking_an_unknown_key_fails_with_a_message(database_url: str) -> None:
    existing(database_url)
    well_formed = "key_" + "A" * 20
    result = run_cli("keys", "revoke", well_formed, "--database-url", database_url)
    assert result.exit_code == 1
    assert f"No API key with the '{well_formed}' id" in result.stderr
    # Anything else is not echoed: it may be a secret of some other kind.
    result = run_cli("keys", "revoke", "hunter2", "--database-url", database_url)
    assert result.exit_code == 1
    assert "No API key with the given id" in result.stderr and "hunter2" not in result.output


def test_revoking_by_the_secret_names_its_id_and_never_echoes_it(database_url: str) -> None:
    key_id, secret = create_key(database_url, "alpha")
    result = run_cli("keys", "revoke", secret, "--database-url", database_url)
    assert result.exit_code == 2
    assert f"That is an API key, not a key id (its id is {key_id})" in result.stderr
    assert secret not in result.output
    assert "revoked" not in run_cli("keys", "list", "--database-url", database_url).stdout
    unknown = secret[:-4] + "zzzz"
    result = run_cli("keys", "revoke", unknown, "--database-url", database_url)
    assert "no key in this database has it" in result.stderr and unknown not in result.output


def test_every_command_names_its_database_and_a_new_one_is_announced(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.db"
    url = f"sqlite:///{path}"
    created = run_cli("keys", "create", "--project", "alpha", "--database-url", url)
    assert f"database: SQLite file {path}" in created.stderr
    assert f"No database existed at {path}: it was created" in created.stderr
    again = run_cli("keys", "create", "--project", "alpha", "--database-url", url)
    assert "No database existed" not in again.stderr
    for command in (("keys", "list"), ("keys", "revoke", "key_x"), ("db", "status")):
        result = run_cli(*command, "--database-url", url)
        assert f"database: SQLite file {path}" in result.output, command


@pytest.mark.parametrize("project", ["", "has space", "-dash", "x" * 65, "naïve"])
def test_bad_project_names_are_refused(database_url: str, project: str) -> None:
    result = run_cli("keys", "create", "--project", project, "--database-url", database_url)
    assert result.exit_code == 2
    assert "Invalid project name" in result.stderr
    assert result.stdout == ""


def test_a_project_is_required() -> None:
    result = run_cli("keys", "create")
    assert result.exit_code == 2 and "--project" in result.stderr


def test_database_problems_are_one_line_without_the_password() -> None:
    url = "postgresql://chatkeep:hunter2@127.0.0.1:1/nowhere"
    result = run_cli("keys", "list", "--database-url", url)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "database: postgresql://chatkeep:***@127.0.0.1:1/nowhere"
    assert lines[1].startswith("Error: ") and len(lines) == 2
    assert "hunter2" not in result.output


def test_a_database_with_an_older_schema_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    asyncio.run(SQLiteStore(path).upgrade(through="0002_filter_indexes"))
    result = run_cli("keys", "create", "--project", "alpha", "--database-url", f"sqlite:///{path}")
    assert result.exit_code == 1 and "chatkeep db upgrade" in result.stderr
    assert result.stdout == ""
    assert run_cli("db", "upgrade", "--database-url", f"sqlite:///{path}").exit_code == 0
    assert create_key(f"sqlite:///{path}", "alpha")[1].startswith("sk-ck-")
