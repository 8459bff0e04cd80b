"""Model routing: the `ModelRouter`, built from the config file (`config_file`) or echo only.

Without a config file the echo model answers every name it serves. With one, a model name
goes to the first rule that claims it: an exact `name`, then the `pattern`s (fnmatch) in
file order, then the file's `default`; a name nothing claims is a 404 `model_not_found`.
At start the router logs which names go where, and has each upstream checked (`start`).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from chatkeep.backends.base import Backend
from chatkeep.backends.config_file import ECHO, ConfigFile, ModelEntry, api_keys, load_config
from chatkeep.backends.config_file import ConfigError as ConfigError  # re-exported
from chatkeep.backends.echo import EchoBackend
from chatkeep.backends.upstream import UpstreamBackend
from chatkeep.config import Settings, process_environment
from chatkeep.errors import ModelNotFoundError
from chatkeep.protocol.responses import Model

if TYPE_CHECKING:
    from chatkeep.observability.metrics import Metrics

logger = logging.getLogger(__name__)

# Resolved names of pattern and default routes are cached; clients choose the names, so the
# cache is bounded.
_CACHE_LIMIT = 4096


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
        summary: str = "",
    ) -> None:
        self._backends = dict(backends)
        self.summary = summary
        self._table = table
        created = int(time.time())
        self._listed: list[Model] = [
            {"id": name, "object": "model", "created": created, "owned_by": owner}
            for name, owner in listed
        ]
        self._list_backends = list_backends

    @classmethod
    def echo_only(cls, echo_models: Sequence[str] = ()) -> ModelRouter:
        """No config file: the echo backend answers every name (or only `echo_models`)."""
        summary = f"{ECHO}: {', '.join(echo_models) or 'every model name'}"
        echo = EchoBackend(echo_models)
        return cls({ECHO: echo}, _RouteTable((), ECHO), list_backends=True, summary=summary)

    @classmethod
    def from_config(
        cls,
        config: ConfigFile,
        api_keys: Mapping[str, str | None],
        metrics: Metrics | None = None,
    ) -> ModelRouter:
        """Build the backends a checked config names; `api_keys` maps upstream → key;
        `metrics` counts the upstreams' failures."""
        table = _RouteTable(config.models, config.default)
        backends: dict[str, Backend] = {}
        for name, upstream in config.upstreams.items():
            backends[name] = UpstreamBackend(
                name,
                upstream,
                api_key=api_keys.get(name),
                upstream_model=partial(table.upstream_model_for, name),
                listed_models=[e.name for e in config.models if e.name and e.upstream == name],
                metrics=metrics,
            )
        if config.default == ECHO or any(e.upstream == ECHO for e in config.models):
            backends[ECHO] = EchoBackend([])
        listed = [(e.name, e.upstream) for e in config.models if e.name is not None]
        return cls(backends, table, listed, summary=describe_routes(config))

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
        """Log which names go where; open the upstreams' connection pools and check each.

        The checks run together, each within its upstream's `check_seconds`, and only log:
        an upstream that is down at start may be up by the first request.
        """
        logger.info("serving models: %s", self.summary)
        upstreams = [b for b in self._backends.values() if isinstance(b, UpstreamBackend)]
        await asyncio.gather(*(backend.start() for backend in upstreams))

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()


def build_router(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    metrics: Metrics | None = None,
) -> ModelRouter:
    """The router for these settings: the config file's, or echo only without one.

    `environ` (default: the process environment) is where API keys are looked up.
    """
    if settings.config is None:
        return ModelRouter.echo_only(settings.echo_models)
    return load_router(
        settings.config,
        environ=process_environment() if environ is None else environ,
        metrics=metrics,
    )


def load_router(
    path: Path, *, environ: Mapping[str, str], metrics: Metrics | None = None
) -> ModelRouter:
    """Read, check and build the router of one config file; `ConfigError` if it is bad."""
    config = load_config(path)
    return ModelRouter.from_config(config, api_keys(config, path, environ), metrics)


def describe_routes(config: ConfigFile) -> str:
    """Which names go where, in one line for the start-up log: `upstream 'vllm'
    (http://h:8000/v1): llama-3*, qwen2 -> Qwen/Qwen2; echo: every other name`."""
    claims: dict[str, list[str]] = {name: [] for name in config.upstreams}
    for entry in config.models:
        claim = entry.name or entry.pattern or ""
        if entry.upstream_model is not None:
            claim += f" -> {entry.upstream_model}"
        claims.setdefault(entry.upstream, []).append(claim)
    if config.default is not None:
        claims.setdefault(config.default, []).append("every other name")
    parts = []
    for target, names in claims.items():
        upstream = config.upstreams.get(target)
        where = ECHO if upstream is None else f"upstream '{target}' ({upstream.shown_url})"
        parts.append(f"{where}: {', '.join(names) or 'no model name (nothing routes here)'}")
    if config.default is None:
        parts.append("any other name: 404 model_not_found")
    return "; ".join(parts)
