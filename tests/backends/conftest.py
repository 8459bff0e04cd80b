"""Fixtures of the upstream tests: a fault-injecting upstream, and backends pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from chatkeep.backends.upstream import UpstreamBackend
from chatkeep.backends.upstream_config import UpstreamConfig
from tests.backends.fault_upstream import FaultUpstream, running_fault_upstream


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
