"""Turning command-line flags into the one Settings object (flags win over CHATKEEP_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from chatkeep.config import Settings
from chatkeep.store.factory import SQLITE_PREFIX


def settings_from_flags(**flags: Any) -> Settings:
    """Settings from the given flags (None means: not given), then the environment."""
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()
        )
        raise click.UsageError(f"invalid settings: {problems}") from None


def describe_database(url: str) -> str:
    """The database for messages: a SQLite file by its absolute path, any other URL with
    its password hidden."""
    if url.startswith(SQLITE_PREFIX):
        return f"SQLite file {Path(url[len(SQLITE_PREFIX) :]).absolute()}"
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{location}" if ":" in credentials else url
