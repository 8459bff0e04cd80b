"""`chatkeep export` on both stores: from the database and through a running server it
writes what the HTTP route writes; to a file or stdout; progress only on a terminal; every
bad flag a clear error; and completions without content are not exported."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from chatkeep.cli.export import Progress
from chatkeep.config import Settings
from chatkeep.export.walk import ExportCount
from chatkeep.http.app import create_app
from chatkeep.lifecycle.book import PolicyBook
from chatkeep.lifecycle.retention import Retention
from chatkeep.store.factory import open_store
from chatkeep.store.projects import project_settings_for
from tests.api.exported import Made, make_completions
from tests.api.keyed import keyed_server, run_cli, sdk
from tests.conftest import ThreadedServer

PATH = "/v1/chatkeep/exports/chat_completions"
FORMATS = ["jsonl", "openai-finetune", "openai-evals"]


def export(*args: str) -> tuple[int, str, str]:
    result = run_cli("export", *args)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def made(client: openai.OpenAI) -> Made:
    return make_completions(client)


@pytest.mark.parametrize("export_format", FORMATS)
def test_the_database_and_the_server_export_alike(
    made: Made, database_url: str, base_url: str, http: httpx2.Client, export_format: str
) -> None:
    served = http.get(PATH, params={"format": export_format})
    assert served.status_code == 200
    code, local, err = export("-f", export_format, "--database-url", database_url)
    assert code == 0, err
    assert local == served.text and local.count("\n") >= len(made.all())
    assert "database: " in err and "project default" in err
    code, remote, err = export("-f", export_format, "--url", base_url, "--api-key", "sk-any")
    assert code == 0, err
    assert remote == served.text
    assert f"server: {base_url}/v1" in err


def test_options_reach_the_export(made: Made, database_url: str, base_url: str) -> None:
    def ids(*args: str) -> list[str]:
        code, out, err = export("-f", "jsonl", "--database-url", database_url, *args)
        assert code == 0, err
        return [json.loads(line)["id"] for line in out.splitlines()]

    assert ids("--metadata", "env=prod") == [made.plain, made.cut]
    assert ids("-m", "gpt-4o", "--order", "desc", "--limit", "2") == [made.cut, made.developer]
    assert ids("--after", made.developer) == [made.cut]
    assert made.cut not in ids("--only-stop") and made.tool_call not in ids("--only-stop")
    sampled = ids("--sample-rate", "0.5", "--seed", "3")
    assert set(sampled) <= set(made.all())
    assert sampled == ids("--sample-rate", "0.5", "--seed", "3")
    assert ids("--since", "1d", "--until", "2999-01-01") == made.all()
    assert ids("--since", "2999-01-01") == [] and ids("--until", "2000-01-01") == []
    assert ids("--search", "hello") == [made.plain] and ids("-q", '"many words"') == [made.cut]
    # The same options through a server.
    code, out, _ = export("-f", "jsonl", "--url", base_url, "--metadata", "env=prod")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == [made.plain, made.cut]
    code, out, _ = export("-f", "jsonl", "--url", base_url, "--since", "2999-01-01")
    assert code == 0 and out == ""
    code, out, _ = export("-f", "jsonl", "--url", base_url, "-q", "oslo", "--order", "desc")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == [made.tool_call]


def test_writes_a_file_whole_and_no_progress_off_a_terminal(
    made: Made, database_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "train.jsonl"
    code, out, err = export("-f", "openai-finetune", "-o", str(target), "--database-url",
                            database_url)  # fmt: skip
    assert code == 0, err
    assert out == ""
    lines = target.read_text().splitlines()
    assert len(lines) == 8 and all(json.loads(line)["messages"] for line in lines)
    assert not (tmp_path / "train.jsonl.partial").exists()
    assert "lines/s" not in err and "completions/s" not in err and "\r" not in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_rows_and_rate_on_a_terminal_only() -> None:
    count = ExportCount(completions=1200, lines=1500, left_out=3)
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress(stream)
        time.sleep(0.01)
        progress.update(count)
        progress.done(count, "out.jsonl")
    assert pipe.getvalue() == ""
    shown = terminal.getvalue()
    assert "\r1,500 lines from 1,200 completions" in shown and "completions/s" in shown
    assert shown.endswith("3 left out; written to out.jsonl.\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "csv"], "'csv' is not one of"),
        ([], "Missing option '-f' / '--format'"),
        (["-f", "jsonl", "--limit", "0"], "0 is not in the range x>=1"),
        (["-f", "jsonl", "--limit", "ten"], "'ten' is not a valid integer"),
        (["-f", "jsonl", "--sample-rate", "0"], "0<x<=1"),
        (["-f", "jsonl", "--sample-rate", "1.5"], "0<x<=1"),
        (["-f", "jsonl", "--seed", "x"], "'x' is not a valid integer"),
        (["-f", "jsonl", "--seed", "99999999999999999999"], "64-bit integer"),
        (["-f", "jsonl", "--order", "newest"], "'newest' is not one of"),
        (["-f", "jsonl", "--after", "nope"], "not a completion id"),
        (["-f", "jsonl", "--until", "soon"], "Invalid value for --until: 'soon'"),
        (["-f", "jsonl", "--until", "9999-01-01"], "too far ahead"),
        (["-f", "jsonl", "--metadata", "env"], "expected KEY=VALUE"),
        (["-f", "jsonl", "--search", '"cat'], "Invalid value for --search: a phrase is not"),
        (["-f", "jsonl", "-q", "  "], "Invalid value for --search: the query is empty"),
        (["-f", "jsonl", "--url", "ftp://x"], "must start with http://"),
        (["-f", "jsonl", "--url", "http://x", "--project", "p"], "leave out --database-url"),
        (["-f", "jsonl", "--api-key", "sk-x"], "--api-key goes with --url"),
        (["-f", "jsonl", "--project", "no spaces"], "--project"),
    ],
)
def test_bad_flags_are_usage_errors(args: list[str], message: str) -> None:
    code, out, err = export(*args)
    assert code == 2, out
    assert message in err


def test_a_missing_database_or_server_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    code, _, err = export("-f", "jsonl", "--database-url", f"sqlite:///{missing}")
    assert code == 1 and "No database at" in err and not missing.exists()
    code, _, err = export("-f", "jsonl", "--url", "http://127.0.0.1:9")
    assert code == 1 and "Cannot reach http://127.0.0.1:9/v1" in err


def test_a_wrong_key_is_refused(database_url: str) -> None:
    with keyed_server(database_url, ("alpha",)) as (url, callers):
        callers["alpha"].client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], store=True
        )
        code, _, err = export("-f", "jsonl", "--url", url, "--api-key", "sk-ck-wrong")
        assert code == 1 and "refused the API key (401)" in err
        assert "sk-ck-wrong" not in err  # never echoed, not even a wrong key
        code, out, err = export("-f", "jsonl", "--url", url, "--api-key", callers["alpha"].secret)
        assert code == 0 and len(out.splitlines()) == 1
        assert callers["alpha"].secret not in err
        # The database holds every project; --project picks one.
        code, out, _ = export("-f", "jsonl", "--database-url", database_url, "--project", "alpha")
        assert len(out.splitlines()) == 1
        code, out, _ = export("-f", "jsonl", "--database-url", database_url, "--project", "beta")
        assert code == 0 and out == ""


def _set_policy(database_url: str, *options: str) -> None:
    result = run_cli("projects", "set", "default", *options, "--database-url", database_url)
    assert result.exit_code == 0, result.output


def test_completions_without_content_are_not_exported(database_url: str) -> None:
    settings = Settings(database_url=database_url, auth_cache_seconds=0, purge_interval_seconds=0)
    with ThreadedServer(create_app(settings)) as url, sdk(url, "sk-open") as client:

        def create(text: str) -> str:
            return client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": text}], store=True
            ).id

        kept = create("kept")
        _set_policy(database_url, "--store-content", "false")
        create("no text kept")  # a record with usage and metadata, and no content
        _set_policy(database_url, "--reset", "store_content")
        also = create("also kept")
        for export_format in FORMATS:
            code, out, err = export("-f", export_format, "--database-url", database_url)
            assert code == 0, err
            assert len(out.splitlines()) == 2 and "no text kept" not in out
        code, out, _ = export("-f", "jsonl", "--url", url)
        assert [json.loads(line)["id"] for line in out.splitlines()] == [kept, also]
        # Retention: once their content window has passed, nothing is left to export.
        _set_policy(database_url, "--content-retention", "60s", "--record-retention", "90d")
        _purge_later(database_url, 3600)
        for args in (["--database-url", database_url], ["--url", url]):
            code, out, err = export("-f", "jsonl", *args)
            assert code == 0 and out == "", err


def _purge_later(database_url: str, seconds_ahead: float) -> None:
    async def run() -> Any:
        store = open_store(Settings(database_url=database_url))
        await store.open()
        try:
            book = PolicyBook(project_settings_for(store), {}, ttl=0)
            clock = time.time() + seconds_ahead
            return await Retention(store, book, clock=lambda: clock).purge()
        finally:
            await store.close()

    assert asyncio.run(run())["default"].content == 2
