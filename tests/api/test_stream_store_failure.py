"""A streamed `store: true` create whose commit fails after the chunks went out ends with an
`error` event and a clean end of the stream: never a dropped connection, never a `[DONE]`,
never a stored completion. The store is made to fail for real: another connection holds
the write lock longer than the store waits for it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import openai
import pytest
from starlette.applications import Starlette

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3
from tests.conftest import API_KEY, ThreadedServer

OK = [{"role": "user", "content": "tell me a story"}]


@contextmanager
def sqlite_write_lock(path: Path) -> Iterator[None]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@contextmanager
def postgres_table_lock(url: str) -> Iterator[None]:
    """`LOCK TABLE completions` held by a connection on a loop in a thread of its own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=10)

    conn = run(asyncpg.connect(url))
    run(conn.execute("BEGIN; LOCK TABLE completions IN ACCESS EXCLUSIVE MODE"))
    try:
        yield
    finally:
        run(conn.execute("ROLLBACK"))
        run(conn.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


Locked = tuple[Starlette, Callable[[], AbstractContextManager[None]]]


async def _migrated(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.close()


@pytest.fixture
def locked_store(store_engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Locked:
    """(app, a context manager that makes the store's commits fail while it is held)."""
    if store_engine == "sqlite":
        path = tmp_path / "chatkeep.db"
        store = SQLiteStore(path, busy_timeout_ms=100)
        return create_app(Settings(), store=store), lambda: sqlite_write_lock(path)
    url: str = request.getfixturevalue("blank_postgres_url")
    asyncio.run(_migrated(url))  # with the default timeout: a slow disk's fsync is no fault
    store = PostgresStore(url, pool_min=1, pool_max=4, command_timeout=0.5)
    return create_app(Settings(), store=store), lambda: postgres_table_lock(url)


def test_failed_commit_ends_the_stream_with_an_error_event(locked_store: Locked) -> None:
    app, lock = locked_store
    with (
        ThreadedServer(app) as base_url,
        openai.OpenAI(api_key=API_KEY, base_url=f"{base_url}/v1", max_retries=0) as sdk,
        httpx2.Client(base_url=base_url, headers={"authorization": f"Bearer {API_KEY}"}) as http,
    ):
        with lock():
            # The official client: the chunks arrive, then the error event raises.
            stream = sdk.chat.completions.create(
                model="echo-1", messages=OK, stream=True, store=True
            )
            received = []
            with pytest.raises(openai.APIError) as raised:
                for chunk in stream:
                    received.append(chunk)
            assert received and received[0].choices[0].delta.role == "assistant"
            assert raised.value.type == "service_unavailable_error"
            assert "database" in raised.value.message
            # Raw: a complete response whose last event is the error, with no [DONE].
            body = {"model": "echo-1", "messages": OK, "stream": True, "store": True}
            response = http.post("/v1/chat/completions", json=body)
            assert response.status_code == 200
            events = [e for e in response.text.split("\n\n") if e]
            assert events[-1].startswith('data: {"error":'), events[-1]
            assert "[DONE]" not in response.text
        # The same connection serves on; nothing from the failed streams was stored.
        assert sdk.chat.completions.list().data == []
        assert http.get("/v1/chat/completions").json()["data"] == []
        chunks = list(
            sdk.chat.completions.create(model="echo-1", messages=OK, stream=True, store=True)
        )
        assert [c.id for c in sdk.chat.completions.list().data] == [chunks[0].id]


def test_failed_commit_of_a_plain_create_is_a_503(locked_store: Locked) -> None:
    app, lock = locked_store
    with (
        ThreadedServer(app) as base_url,
        openai.OpenAI(api_key=API_KEY, base_url=f"{base_url}/v1", max_retries=0) as sdk,
    ):
        with lock(), pytest.raises(openai.InternalServerError) as raised:
            sdk.chat.completions.create(model="echo-1", messages=OK, store=True)
        assert raised.value.status_code == 503
        assert sdk.chat.completions.list().data == []


class BrokenStore(SQLiteStore):
    """A store with a bug: its insert raises something that is no ChatkeepError."""

    async def insert(self, completion: object) -> None:  # type: ignore[override]
        raise RuntimeError("a bug, not a fault of the world")


def test_an_unexpected_error_mid_stream_ends_it_with_a_500_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(), store=BrokenStore(tmp_path / "chatkeep.db"))
    body = {"model": "echo-1", "messages": OK, "stream": True, "store": True}
    with (
        ThreadedServer(app) as base_url,
        httpx2.Client(base_url=base_url) as http,
    ):
        response = http.post("/v1/chat/completions", json=body)
        assert response.status_code == 200
        events = [e for e in response.text.split("\n\n") if e]
        assert len(events) > 1 and events[0].startswith('data: {"id":"chatcmpl-')
        assert events[-1].startswith('data: {"error":'), events[-1]
        assert '"type":"server_error"' in events[-1] and "a bug" not in events[-1]
        # The connection was ended cleanly, not dropped: it serves the next request.
        assert http.get("/health").status_code == 200
    assert "unexpected error" in caplog.text
