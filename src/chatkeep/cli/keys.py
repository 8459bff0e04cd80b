"""`chatkeep keys create | list | revoke`: API keys, in the database the server uses.

A new key is printed once, alone on stdout (so `KEY=$(chatkeep keys create ...)` works);
everything else goes to stderr. Listings never show a secret, only its first characters.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from chatkeep.cli.db import (
    database_url_option,
    new_sqlite_file,
    on_schema,
    require_existing_database,
)
from chatkeep.cli.settings import describe_database, settings_from_flags
from chatkeep.config import Settings
from chatkeep.project_names import ProjectNameError, check_project
from chatkeep.service.keys import (
    KEY_ID_SHAPE,
    KeyInputError,
    check_label,
    create_admin_api_key,
    create_api_key,
    hash_key,
    list_api_keys,
    looks_like_key,
    revoke_api_key,
)
from chatkeep.store.factory import MigratableStore, key_store_for
from chatkeep.store.keys import ApiKey, KeyStore

T = TypeVar("T")


def on_key_store(settings: Settings, work: Callable[[KeyStore], Awaitable[T]]) -> T:
    """Open the database as the server does (a blank one gets the schema; an older one is
    refused), run `work` on its keys, close it. Problems become a one-line error."""

    async def run(store: MigratableStore) -> T:
        await store.open()
        try:
            return await work(key_store_for(store))
        finally:
            await store.close()

    return on_schema(settings, run)


def _say_database(settings: Settings) -> None:
    click.echo(f"database: {describe_database(settings.database_url)}", err=True)


def _when(seconds: int | None, never: str = "-") -> str:
    if seconds is None:
        return never
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (they live in the server's database)."""


@keys.command()
@click.option("--project", default=None, help="The project the key belongs to.")
@click.option(
    "--admin",
    is_flag=True,
    help="An admin key: reads every project's usage and costs, and nothing else (no --project).",
)
@click.option("--name", "label", default=None, help="A label to tell keys apart in listings.")
@database_url_option
def create(project: str | None, admin: bool, label: str | None, database_url: str | None) -> None:
    """Create a key and print it, once. A project exists once a key names it."""
    if admin == (project is not None):
        raise click.UsageError(
            "Give --project NAME for a project's key, or --admin for an admin key (it belongs "
            "to no project)."
        )
    try:
        if project is not None:
            check_project(project)
        check_label(label)
    except (ProjectNameError, KeyInputError) as error:
        raise click.UsageError(str(error)) from None
    settings = settings_from_flags(database_url=database_url)
    _say_database(settings)
    new_file = new_sqlite_file(settings)

    async def work(store: KeyStore) -> tuple[bool, str, str]:
        first = not await store.has_keys()
        if project is None:
            created = await create_admin_api_key(store, label)
        else:
            created = await create_api_key(store, project, label)
        return first, created.key.id, created.secret

    first, key_id, secret = on_key_store(settings, work)
    click.echo(secret)
    whose = "an admin key (usage and costs of every project)" if admin else f"project '{project}'"
    click.echo(
        f"Created API key {key_id} for {whose}. It is shown only this once: store it now.",
        err=True,
    )
    if new_file is not None:
        click.echo(
            f"No database existed at {new_file}: it was created for this key. If the "
            "server uses another database, name it with --database-url.",
            err=True,
        )
    if first:
        click.echo(
            "It is the first key in this database: a server running open on it requires "
            f"keys within {settings.auth_cache_seconds:g} s.",
            err=True,
        )


@keys.command(name="list")
@click.option("--project", default=None, help="Only the keys of this project.")
@database_url_option
def list_(project: str | None, database_url: str | None) -> None:
    """List keys, revoked ones included (never their secrets)."""
    settings = settings_from_flags(database_url=database_url)
    _say_database(settings)
    require_existing_database(settings)
    found = on_key_store(settings, lambda store: list_api_keys(store, project))
    if not found:
        click.echo("No API keys. Create one with `chatkeep keys create --project NAME`.", err=True)
        return
    header = ("ID", "PROJECT", "NAME", "KEY", "CREATED", "LAST USED", "REVOKED")
    rows = [header, *(_row(key) for key in found)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _row(key: ApiKey) -> tuple[str, ...]:
    project = "(admin: all)" if key.admin else key.project
    return (key.id, project, key.label or "-", f"{key.prefix}...", _when(key.created),
            _when(key.last_used, "never"), _when(key.revoked))  # fmt: skip


@keys.command()
@click.argument("key_id")
@database_url_option
def revoke(key_id: str, database_url: str | None) -> None:
    """Revoke a key: servers refuse it from then on. It stays listed."""
    settings = settings_from_flags(database_url=database_url)
    _say_database(settings)
    require_existing_database(settings)
    if looks_like_key(key_id):  # the secret itself, pasted: never echo it
        found = on_key_store(settings, lambda store: store.find_key(hash_key(key_id)))
        where = f"its id is {found.key.id}" if found else "no key in this database has it"
        raise click.UsageError(
            f"That is an API key, not a key id ({where}): revoke by id, "
            "`chatkeep keys revoke key_...`. Treat the pasted key as exposed."
        )
    key = on_key_store(settings, lambda store: revoke_api_key(store, key_id))
    if key is None:
        shown = f"'{key_id}'" if KEY_ID_SHAPE.fullmatch(key_id) else "given"
        raise click.ClickException(
            f"No API key with the {shown} id; `chatkeep keys list` shows the keys."
        )
    whose = "an admin key" if key.admin else f"project '{key.project}'"
    click.echo(
        f"API key {key.id} of {whose} is revoked (since {_when(key.revoked)}); "
        f"servers refuse it within {settings.auth_cache_seconds:g} s."
    )
