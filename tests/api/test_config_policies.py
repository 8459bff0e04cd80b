"""The config file's `[projects.NAME]` policies, applied by a running server (through the
official client) and by `chatkeep purge --config`, on both stores.

The file wins: a project it names takes its whole policy from it, whatever the database
holds for that project, and `chatkeep projects set` refuses that project.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner

from chatkeep.cli.main import cli
from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.ids import completion_id_floor
from chatkeep.store.base import NewCompletion
from chatkeep.store.factory import open_store
from tests.api.keyed import run_cli, sdk
from tests.api.test_lifecycle import FOUND, SECRETS, USER, raw_rows, set_policy, stored_header
from tests.conftest import ThreadedServer

DAY = 86400
# A literal string for the pattern: TOML reads it as written, backslash included.
REDACTING = """[projects.default]
redact = ["email", "phone", "secret", 'EMPLOYEE=E\\d{6}']
"""


def config_file(tmp_path: Path, projects: str) -> Path:
    """A config file serving every model name with the echo model, and `projects`."""
    path = tmp_path / "chatkeep.toml"
    path.write_text(f'default = "echo"\n\n{projects}')
    return path


@contextmanager
def served_with(database_url: str, config: Path) -> Iterator[openai.OpenAI]:
    """A server started with `config`, reading the database's policies at every create."""
    settings = Settings(
        database_url=database_url, config=config, auth_cache_seconds=0, purge_interval_seconds=0
    )
    with ThreadedServer(create_app(settings)) as url, sdk(url, "sk-open") as client:
        yield client


def store_aged(database_url: str, project: str, days: float, count: int = 1) -> list[str]:
    """`count` completions of `project` made `days` ago, stored directly (as an older
    server would have): the CLI purge runs on the real clock."""

    async def insert() -> list[str]:
        store = open_store(Settings(database_url=database_url))
        await store.open()
        try:
            ids = []
            for n in range(count):
                minted = int((time.time() - days * DAY) * 1000) + n
                cid = completion_id_floor(minted)
                body = {"id": cid, "choices": [], "usage": None}
                await store.insert(NewCompletion(cid, project, "m", minted // 1000, body, {}, []))
                ids.append(cid)
            return ids
        finally:
            await store.close()

    return asyncio.run(insert())


def purge(database_url: str, config: Path, *options: str) -> tuple[str, str]:
    result = run_cli("purge", *options, "--database-url", database_url, "--config", str(config))
    assert result.exit_code == 0, result.output
    return result.stdout, result.stderr


def test_always_in_the_file_stores_what_did_not_ask_whatever_the_database_says(
    database_url: str, tmp_path: Path
) -> None:
    # The database's policy (set without --config, so the command cannot know the file)
    # says never: the file's table is the whole policy of `default`.
    set_policy(database_url, "--store", "never")
    config = config_file(tmp_path, '[projects.default]\nstore = "always"\n')
    with served_with(database_url, config) as client:
        raw = client.chat.completions.with_raw_response.create(model="m", messages=USER)
        assert stored_header(raw) == "true"
        made = raw.parse()
        assert client.chat.completions.retrieve(made.id).choices[0].message.content == "hello"
        stream = client.chat.completions.create(model="m", messages=USER, stream=True)
        (streamed,) = {chunk.id for chunk in stream}
        assert client.chat.completions.retrieve(streamed).id == streamed
        assert {c.id for c in client.chat.completions.list()} == {made.id, streamed}


def test_never_in_the_file_keeps_nothing_of_a_store_true_request(
    database_url: str, tmp_path: Path
) -> None:
    set_policy(database_url, "--store", "always")
    config = config_file(tmp_path, '[projects.default]\nstore = "never"\n')
    with served_with(database_url, config) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=USER, store=True, metadata={"k": "v"}
        )
        assert raw.status_code == 200 and stored_header(raw) == "false"
        answered = raw.parse()
        assert answered.choices[0].message.content == "hello"
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve(answered.id)
        with client.chat.completions.with_streaming_response.create(
            model="m", messages=USER, stream=True, store=True
        ) as streamed:
            assert stored_header(streamed) == "false"
            assert [line for line in streamed.iter_lines() if '"id"' in line]
        assert client.chat.completions.list().data == []
    assert raw_rows(database_url, "SELECT count(*) FROM completions") == [(0,)]


def test_redaction_in_the_file_changes_the_stored_copy_only(
    database_url: str, tmp_path: Path
) -> None:
    config = config_file(tmp_path, REDACTING)
    with served_with(database_url, config) as client:
        answer = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": SECRETS}], store=True
        )
        assert answer.choices[0].message.content == SECRETS  # the client's answer, untouched
        stored = client.chat.completions.retrieve(answer.id).choices[0].message.content
        shown = client.chat.completions.messages.list(answer.id).data[0].content
        for text in (stored, shown):
            assert text is not None
            assert not [secret for secret in FOUND if secret in text], text
            for placeholder in ("[EMAIL]", "[PHONE]", "[SECRET]", "[EMPLOYEE]"):
                assert placeholder in text
    rows = raw_rows(database_url, "SELECT completion, messages FROM completion_content")
    assert rows and not [secret for secret in FOUND if secret in str(rows)]


def test_projects_set_refuses_a_project_the_file_names(database_url: str, tmp_path: Path) -> None:
    config = config_file(tmp_path, '[projects.default]\nstore = "always"\n')
    # A project the file does not name is set in the database as before.
    set_policy(database_url, "--store", "never", "--config", str(config), project="alpha")
    refusal = (
        f"Error: Project 'default' is declared in the config file {config}, which wins: "
        "change it there."
    )
    args = ["projects", "set", "default", "--store", "never", "--database-url", database_url]
    by_flag = CliRunner().invoke(cli, [*args, "--config", str(config)])
    by_environment = CliRunner().invoke(cli, args, env={"CHATKEEP_CONFIG": str(config)})
    for refused in (by_flag, by_environment):
        assert refused.exit_code == 1, refused.output
        assert refused.stderr.splitlines()[-1] == refusal
    assert raw_rows(database_url, "SELECT name FROM projects") == [("alpha",)]
    shown = run_cli("projects", "show", "default", "--database-url", database_url,
                    "--config", str(config))  # fmt: skip
    assert "policy from config file" in shown.stdout and "store: always (set)" in shown.stdout


def test_purge_uses_the_file_retention_and_dry_run_removes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    # In the database, `default` keeps everything: the file's 1d window wins. `alpha`, which
    # the file does not name, follows the database: its text goes, its record stays.
    set_policy(database_url, "--content-retention", "forever", "--record-retention", "forever")
    set_policy(database_url, "--content-retention", "1d", "--record-retention", "90d",
               project="alpha")  # fmt: skip
    config = config_file(tmp_path, '[projects.default]\ncontent_retention = "1d"\n')
    gone = store_aged(database_url, "default", days=2, count=2)
    (kept,) = store_aged(database_url, "default", days=0.5)
    store_aged(database_url, "alpha", days=2)

    out, err = purge(database_url, config, "--dry-run")
    assert out.splitlines() == [
        "alpha: 1 completions would lose their content; 0 records would be removed",
        "default: 0 completions would lose their content; 2 records would be removed",
    ]
    assert "Dry run: 1 completions would lose their content and 2 records would be removed" in err
    assert raw_rows(database_url, "SELECT count(*) FROM completions") == [(4,)]
    assert raw_rows(database_url, "SELECT count(*) FROM completion_content") == [(4,)]

    out, err = purge(database_url, config)
    assert out.splitlines() == [
        "alpha: 1 completions lost their content; 0 records removed",
        "default: 0 completions lost their content; 2 records removed",
    ]
    assert "1 completions lost their content and 2 records removed, in 2 projects" in err
    left = {row[0] for row in raw_rows(database_url, "SELECT id FROM completions")}
    assert kept in left and not left & set(gone) and len(left) == 2
    with served_with(database_url, config) as client:
        assert [c.id for c in client.chat.completions.list()] == [kept]

    out, _ = purge(database_url, config)
    assert "default: 0 completions lost their content; 0 records removed" in out.splitlines()


def test_purge_without_the_file_follows_the_database(database_url: str, tmp_path: Path) -> None:
    """The control for the test above: the same rows, purged without --config, stay."""
    set_policy(database_url, "--content-retention", "forever", "--record-retention", "forever")
    config_file(tmp_path, '[projects.default]\ncontent_retention = "1d"\n')
    store_aged(database_url, "default", days=2, count=2)
    result = run_cli("purge", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert "default: 0 completions lost their content; 0 records removed" in result.stdout
    assert raw_rows(database_url, "SELECT count(*) FROM completions") == [(2,)]
