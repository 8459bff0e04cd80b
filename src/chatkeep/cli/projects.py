"""`chatkeep projects list | show | set`: each project's data policy (docs/lifecycle.md),
kept in the database the server uses; `--config` (or CHATKEEP_CONFIG) also reads the
`[projects.NAME]` tables of the config file, which win for the projects they name.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from chatkeep.backends.config_file import ConfigError, load_config, project_policies
from chatkeep.cli.db import database_url_option, on_schema, require_existing_database
from chatkeep.cli.settings import describe_database, settings_from_flags
from chatkeep.config import Settings
from chatkeep.lifecycle.policy import (
    DEFAULT_POLICY,
    SETTINGS,
    STORE_MODES,
    PolicyError,
    ProjectPolicy,
)
from chatkeep.project_names import ProjectNameError, check_project
from chatkeep.store.base import DEFAULT_PROJECT
from chatkeep.store.factory import MigratableStore
from chatkeep.store.projects import ProjectSettingsStore, project_settings_for

T = TypeVar("T")

config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The server's config file, for its [projects.NAME] tables (or CHATKEEP_CONFIG).",
)


def on_project_settings(
    settings: Settings, work: Callable[[ProjectSettingsStore], Awaitable[T]]
) -> T:
    async def run(store: MigratableStore) -> T:
        await store.open()
        try:
            return await work(project_settings_for(store))
        finally:
            await store.close()

    return on_schema(settings, run)


def declared_policies(settings: Settings) -> dict[str, ProjectPolicy]:
    if settings.config is None:
        return {}
    try:
        return project_policies(load_config(settings.config), settings.config)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def _prepare(database_url: str | None, config: Path | None) -> Settings:
    settings = settings_from_flags(database_url=database_url, config=config)
    click.echo(f"database: {describe_database(settings.database_url)}", err=True)
    return settings


@click.group()
def projects() -> None:
    """List projects and show or set their data policies."""


@projects.command(name="list")
@database_url_option
@config_option
def list_(database_url: str | None, config: Path | None) -> None:
    """Every project a key, a stored policy or the config file names, with its policy."""
    settings = _prepare(database_url, config)
    require_existing_database(settings)
    declared = declared_policies(settings)

    async def work(source: ProjectSettingsStore) -> tuple[dict[str, int], dict[str, Any]]:
        return await source.keyed_projects(), await source.all_settings()

    keyed, stored = on_project_settings(settings, work)
    names = sorted({DEFAULT_PROJECT, *keyed, *stored, *declared})
    header = ("PROJECT", "KEYS", "POLICY", "STORE", "CONTENT", "RECORDS", "REDACT")
    rows = [header]
    for name in names:
        policy, source = _effective(name, declared, stored)
        shown = policy.describe()
        rows.append((name, str(keyed.get(name, 0)), source, shown["store"]
                     + ("" if policy.store_content else " (no content)"),
                     shown["content_retention"], shown["record_retention"],
                     ",".join(shown["redact"]) or "-"))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@projects.command()
@click.argument("name")
@database_url_option
@config_option
def show(name: str, database_url: str | None, config: Path | None) -> None:
    """Each setting of a project's policy, and whether it was set or is the default."""
    settings = _prepare(database_url, config)
    require_existing_database(settings)
    declared = declared_policies(settings)
    stored = on_project_settings(settings, lambda source: source.all_settings())
    policy, source = _effective(name, declared, stored)
    click.echo(f"project: {name} (policy from {source})")
    for setting, value in policy.describe().items():
        shown = ", ".join(value) or "none" if isinstance(value, list) else str(value).lower()
        origin = "set" if setting in policy.settings else "default"
        click.echo(f"{setting}: {shown} ({origin})")


@projects.command(name="set")
@click.argument("name")
@click.option("--store", type=click.Choice(STORE_MODES), help="request, always or never.")
@click.option("--store-content", type=bool, help="false: keep records (usage) without text.")
@click.option("--content-retention", help="How long text is kept: 30d, 12h, 2w, forever.")
@click.option("--record-retention", help="How long records are kept (at least as long).")
@click.option(
    "--redact",
    multiple=True,
    help="A detector (email, phone, card, secret, ip) or NAME=REGEX; repeat; 'none' clears.",
)
@click.option(
    "--reset", multiple=True, type=click.Choice(SETTINGS), help="Back to the default; repeat."
)
@database_url_option
@config_option
def set_(
    name: str,
    store: str | None,
    store_content: bool | None,
    content_retention: str | None,
    record_retention: str | None,
    redact: tuple[str, ...],
    reset: tuple[str, ...],
    database_url: str | None,
    config: Path | None,
) -> None:
    """Change a project's policy; running servers apply it within the auth cache time."""
    try:
        check_project(name)
    except ProjectNameError as error:
        raise click.UsageError(str(error)) from None
    changes: dict[str, Any] = {
        "store": store,
        "store_content": store_content,
        "content_retention": content_retention,
        "record_retention": record_retention,
        "redact": None if not redact else [r for r in redact if r != "none"],
    }
    changes = {key: value for key, value in changes.items() if value is not None}
    if not changes and not reset:
        raise click.UsageError("Nothing to set: give a setting, or --reset SETTING.")
    settings = _prepare(database_url, config)
    if name in declared_policies(settings):
        raise click.ClickException(
            f"Project '{name}' is declared in the config file {settings.config}, which wins: "
            "change it there."
        )

    async def work(source: ProjectSettingsStore) -> ProjectPolicy | PolicyError:
        current = (await source.all_settings()).get(name, {})
        merged = {k: v for k, v in {**current, **changes}.items() if k not in reset}
        try:
            policy = ProjectPolicy.parse(merged)
        except PolicyError as error:
            return error  # nothing written
        await source.put_settings(name, dict(policy.settings), int(time.time()))
        return policy

    policy = on_project_settings(settings, work)
    if isinstance(policy, PolicyError):
        raise click.UsageError(str(policy))
    described = ", ".join(
        f"{key}={','.join(value) or 'none' if isinstance(value, list) else str(value).lower()}"
        for key, value in policy.describe().items()
    )
    click.echo(f"Project '{name}': {described}.")
    click.echo(
        f"Running servers apply it within {settings.auth_cache_seconds:g} s; retention "
        "applies at the next purge.",
        err=True,
    )


def _effective(
    name: str, declared: dict[str, ProjectPolicy], stored: dict[str, Any]
) -> tuple[ProjectPolicy, str]:
    if name in declared:
        return declared[name], "config file"
    if name in stored:
        try:
            return ProjectPolicy.parse(stored[name]), "database"
        except PolicyError as error:
            click.echo(f"project {name}: its stored policy is not valid ({error})", err=True)
    return DEFAULT_POLICY, "defaults"
