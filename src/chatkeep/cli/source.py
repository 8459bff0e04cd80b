"""Where `chatkeep export` and `chatkeep logs` read from: one project of a local database
(`--database-url`, `--project`), as an operator has it, or a running server (`--url`,
`--api-key`), as anyone with a key has it. `run_on_source` opens the one the flags name,
runs the command's work on it, closes it, and turns any failure into a one-line error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from chatkeep.cli.db import database_url_option, on_schema, require_existing_database
from chatkeep.cli.settings import describe_database, settings_from_flags
from chatkeep.errors import InvalidRequestError
from chatkeep.export.remote import RemoteError, api_base, open_remote
from chatkeep.export.source import CompletionSource, StoreSource
from chatkeep.project_names import ProjectNameError, check_project
from chatkeep.protocol.search import SearchQuery, parse_search
from chatkeep.service.reads import StoredCompletions
from chatkeep.store.base import DEFAULT_PROJECT
from chatkeep.store.factory import MigratableStore

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
Work = Callable[[CompletionSource], Coroutine[Any, Any, T]]


@dataclass(frozen=True, slots=True)
class SourceFlags:
    database_url: str | None
    project: str | None
    url: str | None
    api_key: str | None


def source_options(command: F) -> F:
    """The four flags that name a source, added to `command` (passed as `source=`)."""
    options = [
        database_url_option,
        click.option(
            "--project",
            default=None,
            help=f"The project to read in that database [{DEFAULT_PROJECT}].",
        ),
        click.option(
            "--url",
            default=None,
            help="Read from this running server instead (http://host:port, with or without /v1).",
        ),
        click.option(
            "--api-key", default=None, help="The key to send to --url (its project is read)."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def source_flags(flags: dict[str, Any]) -> SourceFlags:
    """Take the source flags out of a command's keyword arguments, checking they fit."""
    found = SourceFlags(
        database_url=flags.pop("database_url"),
        project=flags.pop("project"),
        url=flags.pop("url"),
        api_key=flags.pop("api_key"),
    )
    if found.url is not None:
        if found.database_url is not None or found.project is not None:
            raise click.UsageError(
                "--url reads through a server, whose key decides the project: "
                "leave out --database-url and --project."
            )
        try:
            api_base(found.url)
        except RemoteError as error:
            raise click.BadParameter(str(error), param_hint="--url") from None
    elif found.api_key is not None:
        raise click.UsageError("--api-key goes with --url (a local database needs no key).")
    if found.project is not None:
        try:
            check_project(found.project)
        except ProjectNameError as error:
            raise click.BadParameter(str(error), param_hint="--project") from None
    return found


def run_on_source(flags: SourceFlags, work: Work[T]) -> T:
    """Name the source on stderr, open it, run `work` on it, close it."""
    if flags.url is not None:
        click.echo(f"server: {api_base(flags.url)}", err=True)
        return _on_server(flags.url, flags.api_key, work)
    settings = settings_from_flags(database_url=flags.database_url)
    project = flags.project or DEFAULT_PROJECT
    click.echo(f"database: {describe_database(settings.database_url)}, project {project}", err=True)
    require_existing_database(settings)

    async def run(store: MigratableStore) -> T:
        await store.open()
        try:
            return await work(StoreSource(StoredCompletions(store), project))
        finally:
            await store.close()

    return on_schema(settings, run)


def _on_server(url: str, api_key: str | None, work: Work[T]) -> T:
    async def run() -> T:
        async with open_remote(url, api_key) as source:
            return await work(source)

    try:
        return asyncio.run(run())
    except RemoteError as error:
        raise click.ClickException(str(error)) from None


def parse_search_option(text: str | None, option: str = "--search") -> SearchQuery | None:
    """A full-text search flag (`protocol.search`'s syntax), or None when not given."""
    if text is None:
        return None
    try:
        return parse_search(text)
    except InvalidRequestError as exc:
        reason = exc.message.removeprefix("Invalid 'search': ")
        raise click.BadParameter(reason, param_hint=option) from None


def parse_metadata(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--metadata key=value` flags as a filter map (a key given twice: the last wins)."""
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--metadata")
        metadata[key] = value
    return metadata
