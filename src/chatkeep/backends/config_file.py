"""The config file: its tables as pydantic models, and `load_config`, which reads and checks it.

A bad file raises `ConfigError` naming the file, the key (and line) and what is wrong, with
the likely fix where one is known: a close key name, a top-level key placed after a table,
`[models]` written for `[[models]]`, a file that would serve nothing.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chatkeep.backends.upstream_config import UpstreamConfig
from chatkeep.lifecycle.policy import PolicyError, ProjectPolicy
from chatkeep.project_names import ProjectNameError, check_project
from chatkeep.usage.prices import ModelPrice

ECHO = "echo"
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class ConfigError(Exception):
    """The config file cannot be used; the message names the file, key and problem."""


class ModelEntry(BaseModel):
    """One `[[models]]` table: which model names go to which upstream, under what name."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str | None = Field(default=None, min_length=1, description="An exact model name.")
    pattern: str | None = Field(
        default=None, min_length=1, description="An fnmatch pattern of model names (`llama-*`)."
    )
    upstream: str = Field(description=f"Name of an `[upstreams.<name>]` table, or `{ECHO}`.")
    upstream_model: str | None = Field(
        default=None, min_length=1, description="The name the upstream knows the model by."
    )

    @model_validator(mode="after")
    def _name_or_pattern(self) -> ModelEntry:
        if (self.name is None) == (self.pattern is None):
            raise ValueError("give exactly one of `name` and `pattern`")
        return self


class ConfigFile(BaseModel):
    """The whole config file."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    default: str | None = Field(
        default=None,
        description=f"Upstream (or `{ECHO}`) for names no model entry claims; none: 404.",
    )
    upstreams: dict[str, UpstreamConfig] = Field(default_factory=dict)
    models: list[ModelEntry] = Field(default_factory=list)
    # `[projects.NAME]`: each project's data policy (docs/lifecycle.md), checked by
    # `ProjectPolicy.parse` in `load_config`.
    projects: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # `[prices."MODEL"]`: USD per million tokens, for the costs route (usage/prices.py).
    prices: dict[str, ModelPrice] = Field(default_factory=dict)


def load_config(path: Path) -> ConfigFile:
    """Parse and validate a config file, raising `ConfigError` with file, key and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = ConfigFile.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(path, text, error) for error in exc.errors()]
        raise ConfigError("\n".join(problems)) from None
    _check_references(config, path, text)
    _check_something_is_served(config, path)
    project_policies(config, path, text)
    return config


def project_policies(
    config: ConfigFile, path: Path, text: str | None = None
) -> dict[str, ProjectPolicy]:
    """The `[projects.NAME]` tables as policies; a bad one, or a name no key could have
    (the rule of `chatkeep projects set`), is a `ConfigError` naming it."""
    policies = {}
    for name, settings in config.projects.items():
        try:
            policies[check_project(name)] = ProjectPolicy.parse(settings)
        except (ProjectNameError, PolicyError) as exc:
            raise ConfigError(f"{_located(path, text, ('projects', name))}: {exc}") from None
    return policies


def api_keys(config: ConfigFile, path: Path, environ: Mapping[str, str]) -> dict[str, str | None]:
    """Each upstream's API key, from the environment variable its `api_key_env` names."""
    keys: dict[str, str | None] = {}
    for name, upstream in config.upstreams.items():
        variable = upstream.api_key_env
        if variable is None:
            keys[name] = None
            continue
        value = environ.get(variable)
        if not value:
            loc: tuple[str | int, ...] = ("upstreams", name, "api_key_env")
            raise ConfigError(
                _located(path, text=None, loc=loc)
                + f": the environment variable {variable} is not set (it should hold the API key)"
            )
        keys[name] = value
    return keys


def _check_references(config: ConfigFile, path: Path, text: str) -> None:
    if ECHO in config.upstreams:
        loc: tuple[str | int, ...] = ("upstreams", ECHO)
        raise ConfigError(_located(path, text, loc) + f": `{ECHO}` is the built-in echo model")
    known = sorted(config.upstreams)
    names_known = ", ".join(known) if known else "none"
    seen: set[str] = set()
    for i, entry in enumerate(config.models):
        if entry.upstream != ECHO and entry.upstream not in config.upstreams:
            raise ConfigError(
                _located(path, text, ("models", i, "upstream"))
                + f": no upstream named '{entry.upstream}' (defined: {names_known}, or {ECHO})"
            )
        if entry.name is not None:
            if entry.name in seen:
                raise ConfigError(
                    _located(path, text, ("models", i, "name"))
                    + f": the model '{entry.name}' is already claimed by an earlier entry"
                )
            seen.add(entry.name)
    default = config.default
    if default is not None and default != ECHO and default not in config.upstreams:
        raise ConfigError(
            _located(path, text, ("default",))
            + f": no upstream named '{default}' (defined: {names_known}, or {ECHO})"
        )


def _check_something_is_served(config: ConfigFile, path: Path) -> None:
    """Refuse a file under which every model name would be a 404: almost surely a mistake
    (an empty file, or upstreams declared and never routed to), never a wish."""
    if config.models or config.default is not None:
        return
    if not config.upstreams:
        raise ConfigError(
            f"{path}: declares no upstreams and no models: nothing to serve "
            "(without --config or CHATKEEP_CONFIG, chatkeep serves the echo model)"
        )
    names = list(config.upstreams)
    which = ", ".join(f"'{name}'" for name in names)
    raise ConfigError(
        f"{path}: no [[models]] entry and no default: no model name reaches "
        f"upstream{'s' if len(names) > 1 else ''} {which} "
        f'(add [[models]] entries, or default = "{names[0]}" before the first table)'
    )


def _problem(path: Path, text: str, error: Any) -> str:
    loc: tuple[str | int, ...] = tuple(part for part in error["loc"] if part != "function-after")
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key" + _unknown_key_hint(loc)
    elif kind == "missing":
        message = "required key missing"
    elif kind == "model_type" and _is_top_level_key(loc):  # `[upstreams]` then `default = `
        message = "not an upstream table" + _unknown_key_hint(loc)
    elif loc == ("models",) and kind == "list_type":
        message = "must be a list of tables: write [[models]] before each entry"
    elif loc == ("upstreams",) and kind == "dict_type":
        message = "must be a table of tables: write [upstreams.<name>] before each upstream"
    else:
        message = error["msg"]
    return f"{_located(path, text, loc)}: {message}"


def _unknown_key_hint(loc: tuple[str | int, ...]) -> str:
    """What the writer of an unknown key probably meant, or nothing."""
    key, parent = loc[-1], loc[:-1]
    if not isinstance(key, str):
        return ""
    if _is_top_level_key(loc):
        # TOML has no way back to the top level: a key below a table header belongs to it.
        return (
            f"; top-level keys ({key}) must come before the first [table]: "
            f"TOML reads this one as part of {_table_header(parent)}"
        )
    close = difflib.get_close_matches(key, _known_keys(parent), n=1)
    return f"; did you mean `{close[0]}`?" if close else ""


def _is_top_level_key(loc: tuple[str | int, ...]) -> bool:
    return len(loc) > 1 and loc[-1] in ConfigFile.model_fields


def _known_keys(parent: tuple[str | int, ...]) -> list[str]:
    if parent == ():
        return list(ConfigFile.model_fields)
    if len(parent) == 2 and parent[0] == "upstreams":
        return list(UpstreamConfig.model_fields)
    if len(parent) == 2 and parent[0] == "models":
        return list(ModelEntry.model_fields)
    if len(parent) == 2 and parent[0] == "prices":
        return list(ModelPrice.model_fields)
    return []


def _table_header(table: tuple[str | int, ...]) -> str:
    if table and isinstance(table[-1], int):
        return f"[[{_dotted(table[:-1])}]]"
    return f"[{_dotted(table)}]"


def _located(path: Path, text: str | None, loc: tuple[str | int, ...]) -> str:
    key = _dotted(loc) or "(top level)"
    line = _line_of(text, loc) if text is not None else None
    return f"{path}:{line}: {key}" if line else f"{path}: {key}"


def _dotted(loc: Sequence[str | int]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            name = part if _BARE_KEY.match(part) else f'"{part}"'
            key += f".{name}" if key else name
    return key


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r'^\s*("[^"]*"|[A-Za-z0-9_.-]+)\s*=')


def _line_of(text: str, loc: tuple[str | int, ...]) -> int | None:
    """Best-effort line of a key: that key's line, else its table's header line."""
    counts: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
    best: tuple[int, int] | None = None  # (length of the matched prefix, line)
    for number, line in enumerate(text.splitlines(), start=1):
        path: tuple[str | int, ...] | None = None
        header = _HEADER.match(line)
        if header:
            base = tuple(_split_key(header.group(2)))
            if header.group(1) == "[[":
                counts[base] = counts.get(base, -1) + 1
                table = (*base, counts[base])
            else:
                table = base
            path = table
        else:
            key = _KEY.match(line)
            if key:
                path = (*table, *_split_key(key.group(1)))
        if path is None:
            continue
        # The key's own line, else its table's header; for a table written only as part
        # of deeper headers (`[upstream.x]` for `upstream`), the first such header.
        if loc[: len(path)] == path or path[: len(loc)] == loc:
            length = min(len(path), len(loc))
            if best is None or length > best[0]:
                best = (length, number)
    return best[1] if best else None


def _split_key(key: str) -> list[str]:
    parts = re.findall(r'"([^"]*)"|([^.\s"]+)', key)
    return [quoted or bare for quoted, bare in parts]
