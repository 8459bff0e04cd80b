"""`chatkeep purge`: apply retention now, as the schedule inside `chatkeep serve` does
(docs/lifecycle.md); `--dry-run` only counts what would go."""

from __future__ import annotations

from pathlib import Path

import click

from chatkeep.cli.db import database_url_option, on_schema, require_existing_database
from chatkeep.cli.projects import config_option, declared_policies
from chatkeep.cli.settings import describe_database, settings_from_flags
from chatkeep.lifecycle.book import PolicyBook
from chatkeep.lifecycle.retention import Retention
from chatkeep.store.base import PurgeCount
from chatkeep.store.factory import MigratableStore, response_store_for
from chatkeep.store.projects import project_settings_for


@click.command()
@click.option("--project", default=None, help="Only this project.")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@database_url_option
@config_option
def purge(
    project: str | None, dry_run: bool, database_url: str | None, config: Path | None
) -> None:
    """Remove what each project's retention no longer keeps, and print it."""
    settings = settings_from_flags(database_url=database_url, config=config)
    click.echo(f"database: {describe_database(settings.database_url)}", err=True)
    require_existing_database(settings)
    declared = declared_policies(settings)

    async def work(store: MigratableStore) -> dict[str, PurgeCount] | None:
        await store.open()
        try:
            book = PolicyBook(project_settings_for(store), declared, ttl=0)
            retention = Retention(store, book, responses=response_store_for(store))
            return await retention.purge(project=project, dry_run=dry_run)
        finally:
            await store.close()

    found = on_schema(settings, work)
    if found is None:
        raise click.ClickException("Another server is purging this database now; try later.")
    verb = ("would lose", "would be removed") if dry_run else ("lost", "removed")
    for name, count in sorted(found.items()):
        click.echo(
            f"{name}: {count.content} completions {verb[0]} their content; "
            f"{count.records} records {verb[1]}"
        )
    content = sum(count.content for count in found.values())
    records = sum(count.records for count in found.values())
    click.echo(
        f"{'Dry run: ' if dry_run else ''}{content} completions {verb[0]} their content and "
        f"{records} records {verb[1]}, in {len(found)} project{'s' if len(found) != 1 else ''}.",
        err=True,
    )
