"""SQLite only: acknowledged means stored, and writes that arrive together commit together.

A server process killed with SIGKILL must not lose a completion whose insert returned;
close() must finish queued writes; one bad write in a group commit fails alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import chatkeep
from chatkeep.errors import StoreUnavailableError
from chatkeep.protocol.queries import ListQuery
from chatkeep.store.schema import CompletionExistsError
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3
from tests.store.test_store_contract import new_completion, served, walk

pytestmark = pytest.mark.anyio

# Inserts from 32 concurrent tasks and prints each id once its insert has returned.
WRITER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from chatkeep.ids import CompletionIdGenerator
    from chatkeep.store.base import NewCompletion
    from chatkeep.store.sqlite import SQLiteStore

    async def main(path, synchronous):
        store = SQLiteStore(path, synchronous=synchronous)
        await store.open()
        ids = CompletionIdGenerator()

        async def keep_inserting():
            while True:
                cid, ms = ids.new_id()
                body = {"id": cid, "object": "chat.completion", "seed": 4944116822809979520}
                await store.insert(NewCompletion(cid, "proj", "m", ms // 1000, body, {}, []))
                sys.stdout.write(cid + "\\n")
                sys.stdout.flush()

        await asyncio.gather(*(keep_inserting() for _ in range(32)))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def run_writer_until_killed(path: Path, synchronous: str, at_least: int) -> list[str]:
    src = str(Path(chatkeep.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(path), synchronous],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    acknowledged: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while len(acknowledged) < at_least:
            line = proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                pytest.fail(f"the writer stopped early: {proc.stderr.read()[-2000:]}")
            acknowledged.append(line.strip())
        proc.send_signal(signal.SIGKILL)  # mid-stream: more inserts are in flight
    finally:
        proc.kill()
        remaining, _ = proc.communicate(timeout=30)
    # Lines printed before the kill were acknowledged too; a torn last line was not.
    acknowledged += [line for line in remaining.split("\n") if len(line) == len(acknowledged[0])]
    assert proc.returncode == -signal.SIGKILL
    return acknowledged


@pytest.mark.parametrize("synchronous", ["normal", "full"])
async def test_acknowledged_inserts_survive_kill_9(tmp_path: Path, synchronous: str) -> None:
    path = tmp_path / "killed.db"
    acknowledged = await asyncio.to_thread(run_writer_until_killed, path, synchronous, 500)

    store = SQLiteStore(path)
    await store.open()
    try:
        stored = set(await walk(store, "proj", ListQuery(limit=100)))
        assert len(acknowledged) >= 500
        missing = [cid for cid in acknowledged if cid not in stored]
        assert missing == [], f"{len(missing)} acknowledged completions were lost"
        got = await store.get("proj", acknowledged[-1])
        assert got is not None and got["seed"] == 4944116822809979520
    finally:
        await store.close()


async def test_writes_waiting_together_commit_together(tmp_path: Path) -> None:
    path = tmp_path / "group.db"
    store = SQLiteStore(path, batch_size=256)
    await store.open()
    try:
        existing = new_completion()
        await store.insert(existing)
        before = store.write_transactions
        # Another process holds the write lock, so every insert below queues up behind it.
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        cs = [new_completion(metadata={"n": str(i)}) for i in range(100)]
        cs[40] = new_completion(completion_id=existing.id)
        cs[71] = new_completion(completion_id=cs[70].id)
        tasks = [asyncio.create_task(store.insert(c)) for c in cs]
        await asyncio.sleep(0.3)
        assert not any(task.done() for task in tasks)
        blocker.execute("COMMIT")
        blocker.close()

        results = await asyncio.gather(*tasks, return_exceptions=True)

        # What the writer took before it found the lock taken is one transaction; all that
        # queued up meanwhile is the other.
        assert store.write_transactions - before in (1, 2)
        assert isinstance(results[40], CompletionExistsError)
        assert isinstance(results[71], CompletionExistsError)  # the queue keeps arrival order
        assert [r for i, r in enumerate(results) if i not in (40, 71)] == [None] * 98
        assert await store.get("proj", existing.id) == served(existing)
        assert await store.get("proj", cs[70].id) == served(cs[70])
        assert len(await walk(store, "proj", ListQuery(limit=100))) == 1 + 98
    finally:
        await store.close()


async def test_database_is_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        c = new_completion(metadata={"k": "v"})
        await store.insert(c)
        await store.delete("proj", c.id)
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            # The delete cascaded to the metadata rows through the foreign key.
            assert conn.execute("SELECT count(*) FROM completion_metadata").fetchone() == (0,)
        finally:
            conn.close()
    finally:
        await store.close()


async def test_an_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "no" / "such" / "dir" / "x.db")

    with pytest.raises(StoreUnavailableError, match="Cannot open the SQLite database"):
        await store.open()
