"""Fixtures of the upstream tests: a fault-injecting upstream, and backends pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from chatkeep.backends.upstream import UpstreamBackend
from chatkeep.backends.upstream_config import UpstreamConfig
from chatkeep.config import Settings
from chatkeep.http.app import create_app
from tests.backends.fault_upstream import FaultUpstream, running_fault_upstream
from tests.conftest import API_KEY


@pytest.fixture
async def upstream() -> AsyncIterator[FaultUpstream]:
    async with running_fault_upstream() as server:
        yield server


@pytest.fixture
async def make_backend(
    upstream: FaultUpstream,
) -> AsyncIterator[Callable[..., UpstreamBackend]]:
    """Makes backends for `upstream` with short timeouts (and any other settings given)."""
    made: list[UpstreamBackend] = []

    def make(
        *,
        api_key: str | None = None,
        upstream_model: Callable[[str], str | None] | None = None,
        **config: Any,
    ) -> UpstreamBackend:
        settings = {"base_url": upstream.base_url, "connect_timeout": 2, "read_timeout": 2}
        backend = UpstreamBackend(
            "fault",
            UpstreamConfig(**{**settings, **config}),
            api_key=api_key,
            upstream_model=upstream_model,
        )
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()


@pytest.fixture
def backend(make_backend: Callable[..., UpstreamBackend]) -> UpstreamBackend:
    return make_backend()


@asynccontextmanager
async def chatkeep_with_config(tmp_path: Path, toml: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """chatkeep in-process with the config file `toml` (and a SQLite file), through the
    official client over ASGI."""
    config = tmp_path / "chatkeep.toml"
    config.write_text(toml)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'chatkeep.db'}", config=config))
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://chatkeep") as http:
            yield openai.AsyncOpenAI(
                api_key=API_KEY, base_url="http://chatkeep/v1", http_client=http, max_retries=0
            )
