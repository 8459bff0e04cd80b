"""`chatkeep projects list | show | set` and `chatkeep purge` on real databases, with the
table of what each refuses, and the config file's `[projects.NAME]` tables."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from chatkeep.backends.config_file import ConfigError, load_config
from chatkeep.config import Settings
from chatkeep.ids import completion_id_floor
from chatkeep.store.base import NewCompletion
from chatkeep.store.factory import open_store
from tests.api.keyed import create_key, run_cli


def projects(database_url: str, *args: str) -> tuple[int, str, str]:
    result = run_cli("projects", *args, "--database-url", database_url)
    return result.exit_code, result.stdout, result.stderr


def test_set_show_and_list_a_policy(database_url: str) -> None:
    create_key(database_url, "search")
    code, out, err = projects(
        database_url, "set", "search", "--content-retention", "7d", "--record-retention", "90d",
        "--redact", "email", "--redact", r"TICKET=T-\d{6}", "--store", "always",
    )  # fmt: skip
    assert code == 0, err
    assert "store=always" in out and "content_retention=7d" in out and "TICKET=" in out
    assert "database: " in err and "within 5 s" in err

    code, out, _ = projects(database_url, "show", "search")
    assert code == 0
    assert "policy from database" in out
    assert "content_retention: 7d (set)" in out
    assert "record_retention: 90d (set)" in out
    assert "store_content: true (default)" in out

    code, out, _ = projects(database_url, "list")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["search"][1:4] == ["1", "database", "always"]
    assert rows["default"][1:4] == ["0", "defaults", "request"]

    # --reset returns a setting to its default; the others stay.
    assert projects(database_url, "set", "search", "--reset", "store")[0] == 0
    code, out, _ = projects(database_url, "show", "search")
    assert "store: request (default)" in out and "content_retention: 7d (set)" in out
    # `--redact none` clears the rules.
    assert projects(database_url, "set", "search", "--redact", "none")[0] == 0
    assert "redact: none" in projects(database_url, "show", "search")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--content-retention", "30x"], "duration such as 30d"),
        (["--content-retention", "30"], "duration such as 30d"),
        (["--content-retention", "10s"], "at least 60s"),
        (["--content-retention", "0d"], "duration such as 30d"),
        (["--content-retention", "7d", "--record-retention", "1d"], "shorter than"),
        (["--content-retention", "forever", "--record-retention", "90d"], "must be 'forever'"),
        (["--record-retention", "1d"], "shorter than"),  # content keeps its 30d default
        (["--redact", "emails"], "email, phone, card, secret, ip"),
        (["--redact", "X=("], "X"),
        (["--redact", "lower=abc"], "lower"),
        (["--redact", "EMPTY=a*"], "empty"),
        (["--store", "sometimes"], "'sometimes' is not one of"),
        (["--store-content", "maybe"], "is not a valid boolean"),
        ([], "Nothing to set"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(
    database_url: str, args: list[str], message: str
) -> None:
    code, out, err = projects(database_url, "set", "p", *args)
    assert code == 2, out
    assert message in err
    assert "p " not in projects(database_url, "list")[1]


def test_a_bad_project_name_is_refused(database_url: str) -> None:
    code, _, err = projects(database_url, "set", "bad name!", "--store", "never")
    assert code == 2 and "project" in err.lower()


def test_read_commands_never_create_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere.db'}"
    for args in (["list"], ["show", "p"]):
        code, _, err = projects(url, *args)
        assert code == 1 and "nothing was created" in err
    result = run_cli("purge", "--database-url", url)
    assert result.exit_code == 1 and "nothing was created" in result.stderr
    assert not list(tmp_path.iterdir())


def test_a_project_the_config_file_declares_wins_and_cannot_be_set(
    database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "chatkeep.toml"
    config.write_text('default = "echo"\n\n[projects.audit]\nstore = "always"\n')
    create_key(database_url, "audit")
    code, _, err = projects(
        database_url, "set", "audit", "--store", "never", "--config", str(config)
    )
    assert code == 1 and "declared in the config file" in err
    code, out, _ = projects(database_url, "show", "audit", "--config", str(config))
    assert "policy from config file" in out and "store: always (set)" in out


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('store = "sometimes"', "store must be one of request, always, never"),
        ("content_retention = 30", "content_retention must be a duration"),
        ('colour = "red"', "Unknown project setting 'colour'"),
        ('redact = "email"', "redact must be a list"),
        ("store_content = 1", "store_content must be true or false"),
    ],
)
def test_a_bad_project_table_stops_the_config_file_with_its_line(
    tmp_path: Path, table: str, message: str
) -> None:
    config = tmp_path / "chatkeep.toml"
    config.write_text(f'default = "echo"\n\n[projects.audit]\n{table}\n')
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert str(refused.value).startswith(f"{config}:3: projects.audit: ")
    assert message in str(refused.value)


@pytest.mark.parametrize("name", ["bad name!", "-leading-dash", "x" * 65, ""])
def test_a_config_file_project_with_a_bad_name_is_refused_with_its_line(
    tmp_path: Path, name: str
) -> None:
    """The rule `chatkeep projects set` and `chatkeep keys create` apply holds in the file
    too: a table no key could ever name is refused, not silently never used."""
    config = tmp_path / "chatkeep.toml"
    config.write_text(f'default = "echo"\n\n[projects."{name}"]\nstore = "always"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    message = str(refused.value)
    assert message.startswith(f"{config}:3: projects.") and name in message.split(": ")[1]
    assert f"Invalid project name {name!r}: use 1 to 64 letters, digits" in message
    # `chatkeep serve` stops at start-up with that message, before serving anything.
    url = f"sqlite:///{tmp_path / 'chatkeep.db'}"
    result = run_cli("serve", "--port", "0", "--database-url", url, "--config", str(config))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {message}\n"


def test_purge_dry_run_counts_and_purge_reports(database_url: str) -> None:
    """Completions stored 40 days ago: past the default 30-day content window."""

    async def store_old() -> None:
        store = open_store(Settings(database_url=database_url))
        await store.open()
        try:
            for n in range(3):
                minted = int((time.time() - 40 * 86400) * 1000) + n
                completion = {"id": completion_id_floor(minted), "choices": [], "usage": None}
                await store.insert(
                    NewCompletion(
                        completion_id_floor(minted),
                        "default",
                        "m",
                        minted // 1000,
                        completion,
                        {"n": str(n)},
                        [],
                    )
                )
        finally:
            await store.close()

    asyncio.run(store_old())
    result = run_cli("purge", "--dry-run", "--database-url", database_url)
    assert "default: 0 completions would lose their content; 3 records would be removed" in (
        result.stdout
    )
    assert projects(database_url, "set", "default", "--record-retention", "90d")[0] == 0
    result = run_cli("purge", "--dry-run", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert "default: 3 completions would lose their content; 0 records would be removed" in (
        result.stdout
    )
    result = run_cli("purge", "--project", "default", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert "default: 3 completions lost their content; 0 records removed" in result.stdout
    result = run_cli("purge", "--database-url", database_url)
    assert "default: 0 completions lost their content; 0 records removed" in result.stdout
