"""Shared fixtures: an app per test on a real database, reached through the official
`openai` client, in-process (async, over ASGI) and over a loopback socket (sync).

Every test that asks for the app's `database_url` runs once per store engine: on a SQLite
file of its own, and on PostgreSQL (one database for the session, emptied before each
test; skipped, saying why, where no PostgreSQL is reachable, unless CHATKEEP_REQUIRE_POSTGRES=1).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import openai
import pytest
import uvicorn
from starlette.applications import Starlette

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from tests.postgres_fixtures import (  # noqa: F401  (fixtures, made available everywhere)
    blank_postgres_url,
    empty_tables,
    postgres_admin_url,
    postgres_url,
    run_aside,
    scratch_postgres_url,
    shared_postgres_url,
)

API_KEY = "sk-chatkeep-test"
STORE_ENGINES = ["sqlite", "postgres"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", params=STORE_ENGINES)
def store_engine(request: pytest.FixtureRequest) -> str:
    """The engine of the test's store; session-scoped so that pytest runs all the SQLite
    cases, then all the PostgreSQL ones."""
    engine: str = request.param
    return engine


@pytest.fixture
def database_url(store_engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The test's database, empty: a new SQLite file, or the session's PostgreSQL database
    with every table emptied."""
    if store_engine == "sqlite":
        return f"sqlite:///{tmp_path / 'chatkeep.db'}"
    url: str = request.getfixturevalue("shared_postgres_url")
    run_aside(lambda: empty_tables(url))
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, max_request_bytes=256 * 1024)


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


class _PromptServer(uvicorn.Server):
    """uvicorn, minus the pauses of its shutdown (a 100 ms tick to notice `should_exit`, a
    fixed 100 ms grace sleep, then 100 ms polls): at the end of a test the clients have
    closed their connections already, and those pauses were most of each API test's time."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await asyncio.sleep(0.01)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + 10
        while self.server_state.connections or self.server_state.tasks:
            if time.monotonic() > deadline:
                for task in self.server_state.tasks:
                    task.cancel()
                break
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


class ThreadedServer:
    """A uvicorn server for one app on a free loopback port, in a background thread."""

    def __init__(self, app: Starlette) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self._server = _PromptServer(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture
def base_url(app: Starlette) -> Iterator[str]:
    with ThreadedServer(app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=API_KEY, base_url=f"{base_url}/v1", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http(base_url: str) -> Iterator[httpx2.Client]:
    """A plain HTTP client for what the SDK cannot send (malformed bodies, odd methods)."""
    with httpx2.Client(base_url=base_url, headers={"authorization": f"Bearer {API_KEY}"}) as c:
        yield c


@pytest.fixture
async def async_client(app: Starlette) -> AsyncIterator[openai.AsyncOpenAI]:
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://chatkeep") as h:
            yield openai.AsyncOpenAI(
                api_key=API_KEY, base_url="http://chatkeep/v1", http_client=h, max_retries=0
            )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
