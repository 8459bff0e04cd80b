"""The one thread that writes to a SQLite store, with group commit.

It commits whatever has queued up in one transaction and only then resolves the waiting
futures: one WAL append per batch instead of per write, and "acknowledged" always means
"committed". A batch that fails on one item is redone with a savepoint per item.

Several processes on one file (`chatkeep serve --workers`) each have such a thread. SQLite
lets one write at a time and makes the others retry on a sleep that grows to 100 ms; a
writer waiting there lost its turn to sleeping, and creates behind it waited up to 1.5 s
(bench/workers.py). So writers take turns on an exclusive `flock` of a file beside the
database first (`WriteTurns`), which the kernel hands to the next waiter the moment it is
released; SQLite's own lock is then free whenever they ask.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chatkeep.errors import StoreUnavailableError
from chatkeep.store.sqlite_driver import sqlite3

logger = logging.getLogger(__name__)

WriteOp = Callable[[sqlite3.Connection], Any]
# (succeeded, result or exception) for one queued write.
Outcome = tuple[bool, Any]
# Told of each commit: its seconds and how many writes it committed (the metrics).
CommitObserver = Callable[[float, int], None]


@dataclass(slots=True)
class _Job:
    op: WriteOp
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _settle(items: list[tuple[asyncio.Future[Any], Outcome]]) -> None:
    for future, (ok, value) in items:
        if future.done():  # the caller was cancelled; the write happened regardless
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class WriteTurns:
    """An exclusive `flock` on a file, held by one writing process at a time.

    Only an optimisation: SQLite's own lock keeps writes correct without it. So it never
    fails a write: a lock file that cannot be opened (see `open`) means no turns, and a
    `flock` that fails (a file system without locks) is skipped for that batch.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._held = False

    @classmethod
    def open(cls, path: str, database: str) -> WriteTurns | None:
        """Turns on `path`, made with the database's permissions when missing; None (and
        a warning) when it cannot be opened. Read access is enough to take a `flock`."""
        try:
            mode = os.stat(database).st_mode & 0o666
        except OSError:
            mode = 0o644
        for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
            try:
                return cls(os.open(path, flags | os.O_CLOEXEC, mode))
            except OSError as exc:
                failure = exc
        logger.warning(
            "SQLite writers will not take turns (cannot open %s: %s); writes stay correct, "
            "but several processes writing at once wait longer",
            path,
            failure.strerror,
        )
        return None

    def __enter__(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError:
            self._held = False
        else:
            self._held = True

    def __exit__(self, *exc: object) -> None:
        if self._held:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._held = False

    def close(self) -> None:
        os.close(self._fd)


class Writer:
    """The one thread that writes: drains the queue and commits each batch at once."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        batch_size: int,
        turns: WriteTurns | None = None,
        observe: CommitObserver | None = None,
    ) -> None:
        self._conn = conn
        self._observe = observe
        self._turns: contextlib.AbstractContextManager[object] = (
            turns if turns is not None else contextlib.nullcontext()
        )
        self._closing = turns
        self._batch_size = batch_size
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.transactions = 0
        self._checkpoint = False  # set by an op on this thread; done before its batch returns
        self.thread = threading.Thread(target=self._run, name="chatkeep-sqlite-writer")
        self.thread.daemon = True  # close() stops it; a forgotten store must not hang exit
        self.thread.start()

    def submit(self, op: WriteOp) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Job(op, future, loop))
        return future

    def request_checkpoint(self) -> None:
        """From an op: once its batch commits, copy the WAL into the file and empty it
        before anyone hears back, so deleted text is in neither (with `secure_delete`)."""
        self._checkpoint = True

    def stop(self) -> None:
        """Ask the thread to finish what is queued, then close its connection and exit."""
        self._queue.put(None)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Job] = []
            job = self._queue.get()
            while job is not None:
                batch.append(job)
                if len(batch) >= self._batch_size:
                    break
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
            stopping = job is None
            if batch:
                with self._turns:
                    began = time.perf_counter()
                    outcomes = self._commit_or_fail(batch)
                    if self._observe is not None:
                        self._observe(time.perf_counter() - began, len(batch))
                    if self._checkpoint:
                        self._checkpoint = False
                        self._truncate_wal()
                self._deliver(batch, outcomes)
        self._conn.close()
        if self._closing is not None:
            self._closing.close()

    def _truncate_wal(self) -> None:
        # Readers' snapshots can hold it back; it then waits on them up to the busy timeout.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _commit_or_fail(self, batch: list[_Job]) -> list[Outcome]:
        try:
            return self._commit(batch)
        except Exception as exc:  # never let the thread die with callers still waiting
            return [(False, exc)] * len(batch)

    def _commit(self, batch: list[_Job]) -> list[Outcome]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                outcomes: list[Outcome] = [(True, job.op(conn)) for job in batch]
            except Exception:
                # Someone's item failed: redo the batch with each item in its own savepoint,
                # so that only the failing items fail and the rest still commit together.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                outcomes = [self._in_savepoint(job) for job in batch]
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            # The transaction itself failed (locked, disk full, I/O): nothing was stored.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            message = f"The SQLite database could not be written: {exc}"
            return [(False, StoreUnavailableError(message)) for _ in batch]
        self.transactions += 1
        return outcomes

    def _in_savepoint(self, job: _Job) -> Outcome:
        conn = self._conn
        conn.execute("SAVEPOINT item")
        try:
            result = job.op(conn)
        except Exception as exc:
            # If the error ended the whole transaction this raises, and the batch fails.
            conn.execute("ROLLBACK TO item")
            conn.execute("RELEASE item")
            return (False, exc)
        conn.execute("RELEASE item")
        return (True, result)

    @staticmethod
    def _deliver(batch: list[_Job], outcomes: list[Outcome]) -> None:
        # One wake-up of each event loop per batch, not one per item.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Outcome]]] = {}
        for job, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, outcome))
        for loop, items in by_loop.items():
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, items)
