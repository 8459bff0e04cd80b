"""Helpers for API tests with API keys: keys made through the real `chatkeep keys` CLI on
the test's database, a server on that database, and official clients holding the keys."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import openai
from click.testing import CliRunner, Result

from chatkeep.cli.main import cli
from chatkeep.config import Settings
from chatkeep.http.app import create_app
from tests.conftest import ThreadedServer

CREATED = re.compile(r"Created API key (key_[0-9A-Za-z]+) for project")


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def create_key(database_url: str, project: str, name: str | None = None) -> tuple[str, str]:
    """A new key for `project`, made by `chatkeep keys create`: (key id, secret)."""
    args = ["keys", "create", "--project", project, "--database-url", database_url]
    result = run_cli(*args, *(["--name", name] if name else []))
    assert result.exit_code == 0, result.output
    created = CREATED.search(result.stderr)
    assert created is not None, result.stderr
    return created.group(1), result.stdout.strip()


def revoke_key(database_url: str, key_id: str) -> None:
    result = run_cli("keys", "revoke", key_id, "--database-url", database_url)
    assert result.exit_code == 0, result.output


def sdk(base_url: str, api_key: str, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=api_key, base_url=f"{base_url}/v1", max_retries=0, **options)


@dataclass(frozen=True)
class Caller:
    """One project's key, and an official client that sends it."""

    project: str
    key_id: str
    secret: str
    client: openai.OpenAI


@contextmanager
def keyed_server(
    database_url: str, projects: tuple[str, ...] = ("alpha", "beta"), **settings: Any
) -> Iterator[tuple[str, dict[str, Caller]]]:
    """A key per project (made before the server starts), the server, and a client each."""
    made = {project: create_key(database_url, project) for project in projects}
    app = create_app(Settings(database_url=database_url, **settings))
    with ThreadedServer(app) as url, ExitStack() as clients:
        callers = {
            project: Caller(project, key_id, secret, clients.enter_context(sdk(url, secret)))
            for project, (key_id, secret) in made.items()
        }
        yield url, callers
