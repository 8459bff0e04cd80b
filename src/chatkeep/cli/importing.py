"""`chatkeep import`: stored completions from a server that speaks the stored-completions
API (OpenAI, Azure, another chatkeep) into a project of this database (`importer`)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from chatkeep.cli.db import database_url_option, new_sqlite_file, on_schema
from chatkeep.cli.logs import parse_since
from chatkeep.cli.projects import config_option, declared_policies
from chatkeep.cli.settings import describe_database, settings_from_flags
from chatkeep.cli.source import parse_metadata
from chatkeep.export.remote import RemoteError, api_base, open_remote
from chatkeep.export.retry import Retry
from chatkeep.importer.run import ImportCount, Importer, ImportOptions
from chatkeep.lifecycle.book import PolicyBook
from chatkeep.project_names import ProjectNameError, check_project
from chatkeep.store.base import DEFAULT_PROJECT
from chatkeep.store.factory import MigratableStore
from chatkeep.store.projects import project_settings_for


def _line(count: ImportCount, started: float) -> str:
    rate = count.seen / max(time.monotonic() - started, 1e-9)
    skipped = count.present + count.older + count.refused + count.gone
    return f"{count.seen:,} seen, {count.imported:,} imported, {skipped:,} skipped, {rate:,.0f}/s"


@click.command(name="import")
@click.option("--from", "source", required=True, help="The source server's URL (its /v1 base).")
@click.option(
    "--api-key-env",
    default=None,
    metavar="NAME",
    help="The environment variable holding the source's API key (e.g. OPENAI_API_KEY).",
)
@click.option("--project", default=DEFAULT_PROJECT, show_default=True, help="Import into this.")
@click.option("--metadata", multiple=True, help="KEY=VALUE added to every imported one; repeat.")
@click.option("-m", "--model", default=None, help="Only completions made with this model.")
@click.option("--since", default=None, help="Only those created then or later: 2026-01-31, 7d.")
@database_url_option
@config_option
def import_completions(
    source: str,
    api_key_env: str | None,
    project: str,
    metadata: tuple[str, ...],
    model: str | None,
    since: str | None,
    database_url: str | None,
    config: Path | None,
) -> None:
    """Import stored completions from another server, resumably: run it again to go on."""
    try:
        base = api_base(source)
        check_project(project)
    except RemoteError as error:
        raise click.BadParameter(str(error), param_hint="--from") from None
    except ProjectNameError as error:
        raise click.BadParameter(str(error), param_hint="--project") from None
    api_key = None
    if api_key_env is not None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise click.BadParameter(f"${api_key_env} is not set.", param_hint="--api-key-env")
    options = ImportOptions(
        project=project,
        metadata=parse_metadata(metadata),
        model=model,
        since=int(parse_since(since)) if since is not None else None,
    )
    settings = settings_from_flags(database_url=database_url, config=config)
    click.echo(f"database: {describe_database(settings.database_url)}, project {project}", err=True)
    click.echo(f"source: {base}", err=True)
    new_file = new_sqlite_file(settings)
    declared = declared_policies(settings)
    started, terminal = time.monotonic(), sys.stderr.isatty()

    def progress(count: ImportCount) -> None:
        if terminal:
            click.echo(f"\r{_line(count, started)}", err=True, nl=False)

    async def work(store: MigratableStore) -> ImportCount:
        await store.open()
        try:
            policy = await PolicyBook(project_settings_for(store), declared, ttl=0).policy_for(
                project
            )
            if policy.store == "never":
                raise click.ClickException(
                    f"Project {project!r} stores nothing (its store policy is 'never')."
                )
            async with open_remote(base, api_key, Retry()) as remote:
                importer = Importer(store, remote, options, policy)
                try:
                    return await importer.run(progress)
                except RemoteError as error:
                    done = importer.count
                    raise click.ClickException(
                        f"{error} Stopped after importing {done.imported:,}; "
                        "run the same command again to go on from there."
                    ) from None
        finally:
            await store.close()

    count = on_schema(settings, work)
    if terminal:
        click.echo("", err=True)
    click.echo(
        f"Imported {count.imported:,} of {count.seen:,} completions seen into {project!r}: "
        f"{count.present:,} already here, {count.older:,} older than --since, "
        f"{count.refused:,} not importable, {count.gone:,} deleted at the source meanwhile.",
        err=True,
    )
    if new_file is not None:
        click.echo(
            f"No database existed at {new_file}: it was created for this import. If the "
            "server uses another database, name it with --database-url.",
            err=True,
        )
