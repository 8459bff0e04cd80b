"""`chatkeep serve --workers 2`: two processes on one port and one store, on both stores.

Which worker takes a connection is the kernel's choice; the tests make it theirs by stopping
one worker (SIGSTOP) while the other serves, so "created through one, read through the
other" is what happens, not what probably happens. Each phase uses a fresh client, so that
no kept-alive connection of the stopped worker is reused.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import pytest

from tests.api.test_server_process import ServerProcess
from tests.postgres_fixtures import create_database, drop_database

USER = [{"role": "user", "content": "hello from one of two workers"}]


def _workers(server: ServerProcess) -> list[int]:
    pid = server.proc.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _wait_for_workers(server: ServerProcess, count: int, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while ((pids := _workers(server)) and len(pids) != count) or not pids:
        assert time.monotonic() < deadline, f"workers: {pids}"
        time.sleep(0.05)
    return pids


@contextmanager
def _only(server: ServerProcess, serving: int, stopped: int) -> Iterator[openai.OpenAI]:
    """A fresh client while `stopped` is paused: every connection goes to `serving`."""
    os.kill(stopped, signal.SIGSTOP)
    try:
        with server.client() as client:
            yield client
    finally:
        os.kill(stopped, signal.SIGCONT)


@pytest.fixture(params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_admin_url: str
) -> Iterator[ServerProcess]:
    url = f"sqlite:///{tmp_path / 'workers.db'}"
    if request.param == "postgres":
        url = create_database(postgres_admin_url, prefix="chatkeep_workers")
    try:
        process = ServerProcess(tmp_path, "--workers", "2", "--database-url", url)
        try:
            yield process
        finally:
            output = process.stop()
        assert " ERROR " not in output, output
        assert "Traceback" not in output, output
    finally:
        if request.param == "postgres":
            drop_database(postgres_admin_url, url)


def test_created_through_one_worker_is_read_and_deleted_through_the_other(
    server: ServerProcess,
) -> None:
    a, b = _wait_for_workers(server, 2)
    ids: list[str] = []
    for turn in range(6):  # alternate: ids stay unique and in creation order across workers
        serving, stopped = (a, b) if turn % 2 == 0 else (b, a)
        with _only(server, serving, stopped) as client:
            created = client.chat.completions.create(
                model="echo-1", messages=USER, store=True, metadata={"turn": str(turn)}
            )
        ids.append(created.id)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for turn, completion_id in enumerate(ids):
        # Read through the worker that did not create it, at once.
        serving, stopped = (b, a) if turn % 2 == 0 else (a, b)
        with _only(server, serving, stopped) as client:
            got = client.chat.completions.retrieve(completion_id)
            assert got.metadata == {"turn": str(turn)}
            messages = client.chat.completions.messages.list(completion_id)
            assert [m.content for m in messages.data] == [USER[0]["content"]]
    with _only(server, b, a) as client:
        page = client.chat.completions.list(limit=100, order="asc")
        assert [c.id for c in page.data] == ids
        assert client.chat.completions.delete(ids[0]).deleted
    with _only(server, a, b) as client, pytest.raises(openai.NotFoundError):
        client.chat.completions.retrieve(ids[0])


def test_a_worker_that_dies_is_started_again(server: ServerProcess) -> None:
    a, b = _wait_for_workers(server, 2)
    os.kill(a, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while a in (pids := _workers(server)) or len(pids) != 2:
        assert time.monotonic() < deadline, f"workers: {pids}"
        time.sleep(0.05)
    assert b in pids
    fresh = next(pid for pid in pids if pid != b)
    deadline = time.monotonic() + 20
    while True:  # the new worker serves once its start-up is done
        try:
            with _only(server, fresh, b) as client:
                client.with_options(timeout=2.0).models.list()
            break
        except openai.APIConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    # One ERROR-free exit: the supervisor logged a warning, not an error, for one death.
    output = server.stop()
    assert "worker 0 ended unexpectedly (signal SIGKILL); starting it again" in output


def test_stopping_the_parent_ends_every_worker(server: ServerProcess) -> None:
    workers = _wait_for_workers(server, 2)
    server.stop()
    for pid in workers:
        deadline = time.monotonic() + 20
        while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
            assert time.monotonic() < deadline, f"worker {pid} outlived the server"
            time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "X"
