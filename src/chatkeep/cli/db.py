"""`chatkeep db status | upgrade`: the database's schema migrations, shown and applied;
and the schema check `chatkeep serve` makes before it listens.

A blank database needs no command: the server creates the schema when it opens one. A
database that holds data and an older schema is upgraded only by `chatkeep db upgrade`,
an operator's decision (back up first). Errors are one line, and never show a password.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import asyncpg  # type: ignore[import-untyped]
import click

from chatkeep.cli.settings import describe_database, settings_from_flags
from chatkeep.config import Settings
from chatkeep.errors import ChatkeepError, StoreUnavailableError
from chatkeep.store.factory import SQLITE_PREFIX, MigratableStore, open_store, sqlite_path
from chatkeep.store.schema import MIGRATIONS, UPGRADE_COMMAND, SchemaBehindError
from chatkeep.store.sqlite_driver import sqlite3

T = TypeVar("T")

# What reaching a database can raise besides our own errors: a bad URL (ValueError), an
# unreadable file or socket (OSError), and each driver's own (no such database, bad login).
_DATABASE_ERRORS = (ChatkeepError, ValueError, OSError, sqlite3.Error, asyncpg.PostgresError)

database_url_option = click.option(
    "--database-url",
    default=None,
    help="The server's database [CHATKEEP_DATABASE_URL; sqlite:///chatkeep.db].",
)


def _without_password(text: str, url: str) -> str:
    """`text` with the URL, or its `:password@` part, shown as `describe_database` shows it
    (driver messages rarely quote either, but a log line is no place to find out)."""
    text = text.replace(url, describe_database(url))
    try:
        password = urlsplit(url).password
    except ValueError:  # a malformed URL: describe_database already hid what it could
        return text
    for secret in {password, unquote(password)} if password else set():
        text = text.replace(f":{secret}@", ":***@")
    return text


def _reason(error: BaseException, url: str) -> str:
    """What failed, in words: a command runs once, so "try again shortly" (the words of a
    503 during an outage) would not help; the network cause underneath does."""
    if isinstance(error, StoreUnavailableError) and isinstance(error.__cause__, OSError):
        error = error.__cause__
    if isinstance(error, OSError):
        try:
            parts = urlsplit(url)
            where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        except ValueError:
            where = "the database server"
        if isinstance(error, ConnectionRefusedError):
            return f"connection refused at {where}: is PostgreSQL running and listening there?"
        if isinstance(error, socket.gaierror):
            return f"cannot resolve the host of {where}"
        if isinstance(error, TimeoutError):
            return f"no answer from {where} in time"
        return f"cannot connect to {where}: {error.strerror or error}"
    return " ".join(str(error).split()) or type(error).__name__


def on_schema(settings: Settings, work: Callable[[MigratableStore], Coroutine[Any, Any, T]]) -> T:
    """Run `work` on the (unopened) store of `settings.database_url`; any problem reaching
    the database, or a schema this chatkeep does not know, becomes a one-line error."""
    url = settings.database_url
    try:
        return asyncio.run(work(open_store(settings)))
    except _DATABASE_ERRORS as error:
        message = _reason(error, url)
        where = describe_database(url)
        raise click.ClickException(
            _without_password(f"{message} (database: {where})", url)
        ) from None


def new_sqlite_file(settings: Settings) -> Path | None:
    """The absolute path of the SQLite file `settings` names when no such file exists yet;
    None when it exists, or the database is not SQLite."""
    url = settings.database_url
    if not url.startswith(SQLITE_PREFIX):
        return None
    path = Path(sqlite_path(url)).absolute()
    return None if path.exists() else path


def require_existing_database(settings: Settings) -> None:
    """Stop a command that only reads (`db status`, `keys list`, `keys revoke`) before it
    would create a SQLite file that is not there: a wrong directory or URL, most likely."""
    missing = new_sqlite_file(settings)
    if missing is not None:
        raise click.ClickException(
            f"No database at {missing}: nothing was created. Run this where the server's "
            "database is, or name it with --database-url (or CHATKEEP_DATABASE_URL)."
        )


def check_schema_before_serving(settings: Settings) -> None:
    """Stop `chatkeep serve` with a one-line message when the database cannot be reached or
    its schema is not this version's (behind: names `chatkeep db upgrade`; ahead: says so).

    A blank database passes: the server creates the schema when it opens the store.
    """
    pending = on_schema(settings, lambda store: store.pending_migrations())
    if pending and len(pending) < len(MIGRATIONS):
        where = describe_database(settings.database_url)
        raise click.ClickException(f"{SchemaBehindError(pending)} (database: {where})")


@click.group()
def db() -> None:
    """Show and apply the database's schema migrations."""


@db.command()
@database_url_option
def status(database_url: str | None) -> None:
    """List each migration as applied or pending."""
    settings = settings_from_flags(database_url=database_url)
    click.echo(f"database: {describe_database(settings.database_url)}")
    require_existing_database(settings)
    pending = on_schema(settings, lambda store: store.pending_migrations())
    for migration in MIGRATIONS:
        click.echo(f"{'pending' if migration.name in pending else 'applied'}  {migration.name}")
    if not pending:
        click.echo("The schema is up to date.")
    elif len(pending) == len(MIGRATIONS):
        click.echo(
            "The database is blank: `chatkeep serve` creates the schema when it starts "
            f"(or run `{UPGRADE_COMMAND}`)."
        )
    else:
        click.echo(f"{len(pending)} pending: back up the database, then run `{UPGRADE_COMMAND}`.")


@db.command()
@database_url_option
def upgrade(database_url: str | None) -> None:
    """Apply the pending migrations, in one transaction (back up the database first)."""
    settings = settings_from_flags(database_url=database_url)
    applied = on_schema(settings, lambda store: store.upgrade())
    where = describe_database(settings.database_url)
    if applied:
        names = ", ".join(applied)
        plural = "s" if len(applied) != 1 else ""
        click.echo(f"Applied {len(applied)} migration{plural} to {where}: {names}.")
    else:
        click.echo(f"{where} is up to date: nothing to apply.")
