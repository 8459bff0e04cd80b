"""Model routing: the config file of upstreams and models, and the `ModelRouter`.

Without a config file the echo model answers every name it serves. With one, a model name
goes to the first rule that claims it: an exact `name`, then the `pattern`s (fnmatch) in
file order, then the file's `default`; a name nothing claims is a 404 `model_not_found`.
A bad file raises `ConfigError` naming the file, the key (and line) and what is wrong.
"""

from __future__ import annotations

import fnmatch
import re
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from chatkeep.backends.base import Backend
from chatkeep.backends.echo import EchoBackend
from chatkeep.backends.upstream import UpstreamBackend
from chatkeep.backends.upstream_config import UpstreamConfig
from chatkeep.config import Settings, process_environment
from chatkeep.errors import ModelNotFoundError
from chatkeep.protocol.responses import Model

ECHO = "echo"
# Resolved names of pattern and default routes are cached; clients choose the names, so the
# cache is bounded.
_CACHE_LIMIT = 4096
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


@dataclass(frozen=True, slots=True)
class Route:
    """Where one model name goes: the backend, and the model name the backend is asked for."""

    backend: Backend
    upstream_model: str


class _RouteTable:
    """The routing rules, resolved to (target name, upstream model name), with a cache."""

    def __init__(self, entries: Sequence[ModelEntry], default: str | None) -> None:
        self._exact: dict[str, tuple[str, str]] = {}
        self._patterns: list[tuple[re.Pattern[str], str, str | None]] = []
        for entry in entries:
            if entry.name is not None:
                self._exact[entry.name] = (entry.upstream, entry.upstream_model or entry.name)
            elif entry.pattern is not None:
                regex = re.compile(fnmatch.translate(entry.pattern))
                self._patterns.append((regex, entry.upstream, entry.upstream_model))
        self._default = default
        self._cache: dict[str, tuple[str, str] | None] = {}

    def resolve(self, model: str) -> tuple[str, str] | None:
        found = self._exact.get(model)
        if found is not None:
            return found
        try:
            return self._cache[model]
        except KeyError:
            pass
        found = self._search(model)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[model] = found
        return found

    def _search(self, model: str) -> tuple[str, str] | None:
        for regex, target, upstream_model in self._patterns:
            if regex.match(model):
                return target, upstream_model or model
        if self._default is not None:
            return self._default, model
        return None

    def upstream_model_for(self, target: str, model: str) -> str | None:
        found = self.resolve(model)
        return found[1] if found is not None and found[0] == target else None


class ModelRouter:
    """Finds the backend that answers a model name, and lists the configured models."""

    def __init__(
        self,
        backends: Mapping[str, Backend],
        table: _RouteTable,
        listed: Sequence[tuple[str, str]] = (),
        *,
        list_backends: bool = False,
    ) -> None:
        self._backends = dict(backends)
        self._table = table
        created = int(time.time())
        self._listed: list[Model] = [
            {"id": name, "object": "model", "created": created, "owned_by": owner}
            for name, owner in listed
        ]
        self._list_backends = list_backends

    @classmethod
    def echo_only(cls, echo: Backend) -> ModelRouter:
        """No config file: the echo backend answers every name it serves."""
        return cls({ECHO: echo}, _RouteTable((), ECHO), list_backends=True)

    @classmethod
    def from_config(cls, config: ConfigFile, api_keys: Mapping[str, str | None]) -> ModelRouter:
        """Build the backends a checked config names; `api_keys` maps upstream → key."""
        table = _RouteTable(config.models, config.default)
        backends: dict[str, Backend] = {}
        for name, upstream in config.upstreams.items():
            backends[name] = UpstreamBackend(
                name,
                upstream,
                api_key=api_keys.get(name),
                upstream_model=partial(table.upstream_model_for, name),
                listed_models=[e.name for e in config.models if e.name and e.upstream == name],
            )
        if config.default == ECHO or any(e.upstream == ECHO for e in config.models):
            backends[ECHO] = EchoBackend([])
        listed = [(e.name, e.upstream) for e in config.models if e.name is not None]
        return cls(backends, table, listed)

    def route(self, model: str) -> Route:
        """The route for a requested model name; `ModelNotFoundError` when none."""
        found = self._table.resolve(model)
        if found is not None:
            backend = self._backends[found[0]]
            if backend.serves(model):
                return Route(backend, found[1])
        raise ModelNotFoundError(model)

    def backend_for(self, model: str) -> Backend:
        return self.route(model).backend

    @property
    def backends(self) -> list[Backend]:
        return list(self._backends.values())

    def models(self) -> list[Model]:
        if self._list_backends:
            return [model for backend in self._backends.values() for model in backend.models()]
        return list(self._listed)

    async def start(self) -> None:
        """Open the upstreams' connection pools (otherwise opened on first use)."""
        for backend in self._backends.values():
            if isinstance(backend, UpstreamBackend):
                await backend.start()

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()


def build_router(settings: Settings, *, environ: Mapping[str, str] | None = None) -> ModelRouter:
    """The router for these settings: the config file's, or echo only without one.

    `environ` (default: the process environment) is where API keys are looked up.
    """
    if settings.config is None:
        return ModelRouter.echo_only(EchoBackend(settings.echo_models))
    return load_router(
        settings.config, environ=process_environment() if environ is None else environ
    )


def load_router(path: Path, *, environ: Mapping[str, str]) -> ModelRouter:
    """Read, check and build the router of one config file; `ConfigError` if it is bad."""
    config = load_config(path)
    return ModelRouter.from_config(config, api_keys(config, path, environ))


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
    return config


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


def _problem(path: Path, text: str, error: Any) -> str:
    loc = tuple(part for part in error["loc"] if part != "function-after")
    message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
    if error["type"] == "missing":
        message = "required key missing"
    return f"{_located(path, text, loc)}: {message}"


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
        matched = path is not None and loc[: len(path)] == path
        if path is not None and matched and (best is None or len(path) > best[0]):
            best = (len(path), number)
    return best[1] if best else None


def _split_key(key: str) -> list[str]:
    parts = re.findall(r'"([^"]*)"|([^.\s"]+)', key)
    return [quoted or bare for quoted, bare in parts]
