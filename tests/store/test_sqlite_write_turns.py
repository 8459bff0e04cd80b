"""Writers of several processes on one SQLite file take turns on a file lock beside it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_writer import WriteTurns
from tests.store.test_store_contract import new_completion

pytestmark = pytest.mark.anyio


def _taken_elsewhere(path: Path) -> bool:
    """Whether another process finds the lock held (a non-blocking try from a child)."""
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n    sys.exit(1)\n"
    )
    return subprocess.run([sys.executable, "-c", probe, str(path)]).returncode == 1


def test_a_turn_excludes_other_processes_until_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "db-writelock"
    turns = WriteTurns.open(str(path), str(tmp_path / "db"))
    assert turns is not None
    try:
        with turns:
            assert _taken_elsewhere(path)
        assert not _taken_elsewhere(path)
    finally:
        turns.close()


async def test_two_stores_on_one_file_both_commit_every_write(tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    first, second = SQLiteStore(database), SQLiteStore(database)
    await first.open()
    await second.open()
    try:
        assert (tmp_path / "shared.db-writelock").exists()
        created = [new_completion() for _ in range(40)]
        for index, completion in enumerate(created):
            await (first if index % 2 else second).insert(completion)
        for completion in created:
            assert await first.get(completion.project, completion.id) is not None
    finally:
        await first.close()
        await second.close()
    # Closed: the lock file's descriptor went with the writer.
    fd = os.open(tmp_path / "shared.db-writelock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


async def test_a_lock_file_that_cannot_be_opened_leaves_writes_working(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "alone.db"
    # A dangling link: the lock file can be neither made nor opened.
    (tmp_path / "alone.db-writelock").symlink_to(tmp_path / "missing" / "lock")
    store = SQLiteStore(database)
    await store.open()
    try:
        completion = new_completion()
        await store.insert(completion)
        assert await store.get(completion.project, completion.id) is not None
    finally:
        await store.close()
    assert "SQLite writers will not take turns" in caplog.text


def test_the_lock_file_takes_the_database_files_permissions(tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    database.touch()
    database.chmod(0o664)
    old = os.umask(0o002)
    try:
        turns = WriteTurns.open(f"{database}-writelock", str(database))
    finally:
        os.umask(old)
    assert turns is not None
    turns.close()
    assert (Path(f"{database}-writelock").stat().st_mode & 0o777) == 0o664
