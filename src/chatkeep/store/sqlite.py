"""The embedded SQLite store: one writer thread with group commit, a small pool of readers.

Every write goes through the writer thread, which commits whatever has queued up in one
transaction and only then resolves the waiting futures: one fsync-free WAL append per batch
instead of per completion, and "acknowledged" always means "committed". Reads run on their
own connections in a few threads; WAL lets them proceed while the writer commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

from chatkeep.errors import StoreUnavailableError
from chatkeep.protocol.base import keepable
from chatkeep.protocol.queries import ListQuery
from chatkeep.store import imports, sqlite_files, sqlite_purge
from chatkeep.store.base import Cutoffs, NewCompletion, PurgeCount
from chatkeep.store.queries import (
    MODELS_SQL,
    content_sql,
    delete_sql,
    get_sql,
    list_sql,
    messages_sql,
    reach_sql,
    sparsest_first,
)
from chatkeep.store.schema import (
    CompletionExistsError,
    dump_json,
    for_sqlite,
    load_json,
    pending_names,
    plan_open,
    plan_upgrade,
    record_columns,
    stored_object,
)
from chatkeep.store.search_index import SLOT_BITS, SQLITE_ROWID_SQL, id_key
from chatkeep.store.sqlite_driver import sqlite3, too_old
from chatkeep.store.sqlite_search import SearchIndexer, search_page
from chatkeep.store.sqlite_writer import CommitObserver, WriteOp, Writer, WriteTurns
from chatkeep.store.stored_text import StoredText
from chatkeep.store.text import (
    all_keepable,
    check_metadata,
    check_new_completion,
    query_can_match,
)

T = TypeVar("T")
logger = logging.getLogger(__name__)
_GET, _MESSAGES = for_sqlite(get_sql()), for_sqlite(messages_sql())
_DELETE, _CONTENT = for_sqlite(delete_sql()), for_sqlite(content_sql())
_INSERT = (
    "INSERT INTO completions (project, id, model, created, metadata, usage, finish_reasons, "
    "latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# The content row's rowid places it in the search index's id order (`search_sql`).
_INSERT_CONTENT = (
    "INSERT INTO completion_content (rowid, project, id, completion, messages) "
    f"VALUES ({SQLITE_ROWID_SQL}, ?2, ?3, ?4, ?5)"
)
_INSERT_PAIR = (
    "INSERT INTO completion_metadata (project, completion_id, key, value) VALUES (?, ?, ?, ?)"
)
_UPDATE = "UPDATE completions SET metadata = ? WHERE project = ? AND id = ?"
_ALIAS, _INSERT_ALIAS = for_sqlite(imports.ALIAS_SQL), for_sqlite(imports.INSERT_ALIAS_SQL)
_MODELS = for_sqlite(MODELS_SQL)
_CLEAR_PAIRS = "DELETE FROM completion_metadata WHERE project = ? AND completion_id = ?"


class SQLiteStore:
    """A `CompletionStore` in one SQLite file, in WAL mode.

    `synchronous`: "normal" survives a killed process, "full" also power loss.
    `batch_size`: most writes per transaction. `read_threads`: reader connections.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["normal", "full"] = "normal",
        batch_size: int = 256,
        read_threads: int = 4,
        busy_timeout_ms: int = 5000,
    ) -> None:
        if batch_size < 1 or read_threads < 1:
            raise ValueError("batch_size and read_threads must be at least 1")
        self._path = os.fspath(path)
        self._synchronous = synchronous
        self._batch_size = batch_size
        self._read_threads = read_threads
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: Writer | None = None
        self._indexer = SearchIndexer(self._read, self._write)
        self._indexing: asyncio.Task[None] | None = None
        # Set before `open` to be told of each commit (the app's metrics).
        self.observe_commit: CommitObserver | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()

    @property
    def write_transactions(self) -> int:
        """Write transactions committed since `open()`: inserts / this = mean batch size."""
        return self._writer.transactions if self._writer is not None else 0

    def _connect(self) -> sqlite3.Connection:
        if (why := too_old()) is not None:
            raise StoreUnavailableError(f"Cannot open the SQLite database {self._path}: {why}")
        try:
            conn = sqlite_files.connect(self._path, self._busy_timeout_ms)
            sqlite_files.prepare_writer(conn, self._synchronous)
        except sqlite3.Error as exc:
            path = Path(self._path).absolute()
            message = (
                f"Cannot open the SQLite database {path}: {sqlite_files.unopenable(path) or exc}"
            )
            raise StoreUnavailableError(message) from exc
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            sqlite_files.migrate(conn, plan_open)
        except BaseException:
            conn.close()
            raise
        return conn

    async def open(self) -> None:
        if self._writer is not None:
            raise RuntimeError("this store is already open")
        conn = await asyncio.to_thread(self._open_writer)
        # Beside the database, like its -wal and -shm files: writers of several processes
        # take turns on it (sqlite_writer.py).
        turns = WriteTurns.open(f"{self._path}-writelock", self._path)
        self._writer = Writer(conn, self._batch_size, turns, self.observe_commit)
        self._readers = ThreadPoolExecutor(self._read_threads, "chatkeep-sqlite-read")
        self._indexing = asyncio.get_running_loop().create_task(self._indexer.run())

    async def close(self) -> None:
        indexing, self._indexing = self._indexing, None
        if indexing is not None:
            indexing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await indexing
            try:
                await self._indexer.catch_up()
            except Exception as exc:  # what still waits, the next open indexes
                logger.warning("could not index stored completions for search: %s", exc)
        writer, readers = self._writer, self._readers
        self._writer = None
        self._readers = None
        if writer is not None:
            writer.stop()
            await asyncio.to_thread(writer.thread.join)
        if readers is not None:
            await asyncio.to_thread(readers.shutdown, True)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        self._local = threading.local()

    async def _on_own_connection(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on a short-lived connection: schema work needs no open store."""

        def run() -> T:
            conn = self._connect()
            try:
                return fn(conn)
            finally:
                conn.close()

        return await asyncio.to_thread(run)

    async def pending_migrations(self) -> list[str]:
        """Names of the migrations not yet applied, in order (all of them when blank)."""
        return await self._on_own_connection(lambda conn: pending_names(sqlite_files.applied(conn)))

    async def upgrade(self, *, through: str | None = None) -> list[str]:
        """Apply pending migrations (up to `through`, when given); return their names."""
        plan = plan_upgrade(through)
        return await self._on_own_connection(lambda conn: sqlite_files.migrate(conn, plan))

    # Reads -------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite_files.connect(self._path, self._busy_timeout_ms)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        readers = self._readers
        if readers is None:
            raise StoreUnavailableError("The store is closed.")

        def call() -> T:
            try:
                return fn(self._reader())
            except sqlite3.OperationalError as exc:
                message = f"The SQLite database could not be read: {exc}"
                raise StoreUnavailableError(message) from exc

        return await asyncio.get_running_loop().run_in_executor(readers, call)

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def get(self, project: str, completion_id: str) -> dict[str, Any] | None:
        if not all_keepable((project, completion_id)):
            return None
        row = await self._read(lambda conn: conn.execute(_GET, (project, completion_id)).fetchone())
        return None if row is None else stored_object(row[0], row[1])

    async def messages(self, project: str, completion_id: str) -> list[dict[str, Any]] | None:
        if not all_keepable((project, completion_id)):
            return None
        row = await self._read(
            lambda conn: conn.execute(_MESSAGES, (project, completion_id)).fetchone()
        )
        if row is None:
            return None
        messages: list[dict[str, Any]] = load_json(row[0])
        return messages

    # Writes ------------------------------------------------------------------------------

    async def _write(self, op: WriteOp) -> Any:
        writer = self._writer
        if writer is None:
            raise StoreUnavailableError("The store is closed.")
        return await writer.submit(op)

    async def insert(self, completion: NewCompletion) -> None:
        c = completion
        check_new_completion(c)
        # Encoded here, not on the writer thread, which is the one thing all writes share.
        usage, reasons = record_columns(c.completion)
        row = (c.project, c.id, c.model, c.created, dump_json(c.metadata, "metadata"), usage,
               reasons, c.latency_ms)  # fmt: skip
        content = None
        pairs: list[tuple[str, str, str, str]] = []
        if c.keep_content:  # a record alone is never served, so it needs no filter rows
            content = (id_key(c.id) << SLOT_BITS, c.project, c.id,
                       dump_json(c.completion, "completion"),
                       dump_json(c.messages, "messages"))  # fmt: skip
            pairs = [(c.project, c.id, key, value) for key, value in c.metadata.items()]

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(_INSERT, row)
                if c.alias is not None:
                    conn.execute(_INSERT_ALIAS, (c.project, c.alias, c.id))
            except sqlite3.IntegrityError:
                raise CompletionExistsError(c.id) from None
            if content is not None:
                conn.execute(_INSERT_CONTENT, content)
            if pairs:
                conn.executemany(_INSERT_PAIR, pairs)

        await self._write(op)

    async def update_metadata(
        self, project: str, completion_id: str, metadata: dict[str, str]
    ) -> dict[str, Any] | None:
        check_metadata(metadata)
        if not all_keepable((project, completion_id)):
            return None
        encoded = dump_json(metadata, "metadata")
        pairs = [(project, completion_id, key, value) for key, value in metadata.items()]

        def op(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(_CONTENT, (project, completion_id)).fetchone()
            if row is None:
                return None
            conn.execute(_UPDATE, (encoded, project, completion_id))
            conn.execute(_CLEAR_PAIRS, (project, completion_id))
            conn.executemany(_INSERT_PAIR, pairs)
            completion: str = row[0]
            return completion

        completion = await self._write(op)
        return None if completion is None else stored_object(completion, encoded)

    async def delete(self, project: str, completion_id: str) -> bool:
        if not all_keepable((project, completion_id)):
            return False

        def op(conn: sqlite3.Connection) -> bool:
            # Its content and metadata pairs go with it: ON DELETE CASCADE.
            deleted = bool(conn.execute(_DELETE, (project, completion_id)).fetchall())
            if deleted:
                self._request_checkpoint(conn)
            return deleted

        deleted: bool = await self._write(op)
        return deleted

    async def purge(
        self,
        cutoffs: Callable[[str], Cutoffs],
        *,
        project: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, PurgeCount]:
        return await sqlite_purge.purge(
            self._read, self._write, self._request_checkpoint, cutoffs, project, dry_run
        )

    async def models(self, project: str) -> list[str]:
        rows = await self._read(lambda conn: conn.execute(_MODELS, (project,)).fetchall())
        return [str(row[0]) for row in rows]

    async def alias_of(self, project: str, alias: str) -> str | None:
        if not all_keepable((project, alias)):
            return None
        row = await self._read(lambda conn: conn.execute(_ALIAS, (project, alias)).fetchone())
        return None if row is None else str(row[0])

    async def import_checkpoint(self, source: str, project: str) -> str | None:
        sql = for_sqlite(imports.CHECKPOINT_SQL)
        row = await self._read(lambda conn: conn.execute(sql, (source, project)).fetchone())
        return None if row is None else str(row[0])

    async def save_import_checkpoint(self, source: str, project: str, after: str) -> None:
        row = (source, project, after, int(time.time()))
        sql = for_sqlite(imports.SAVE_CHECKPOINT_SQL)
        await self._write(lambda conn: conn.execute(sql, row))

    @asynccontextmanager
    async def purge_lock(self) -> AsyncIterator[bool]:
        # One writer thread per file already serializes every batch: nothing to take.
        yield True

    def _request_checkpoint(self, conn: sqlite3.Connection) -> None:
        if self._writer is not None:
            self._writer.request_checkpoint()

    # For stored responses: a write op that checkpoints the WAL once its batch commits.
    request_checkpoint = _request_checkpoint

    # For the key store, which lives in this same database ---------------------------------

    async def run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on one of this store's reader connections."""
        return await self._read(fn)

    async def run_write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run `op` on the single writer, committed with its batch; durable on return."""
        result: T = await self._write(op)
        return result

    async def list_stored(self, project: str, query: ListQuery) -> list[StoredText]:
        if not (keepable(project) and query_can_match(query)):
            return []

        if query.search is not None:  # every completion stored before it is found
            await self._indexer.catch_up()

        def page(conn: sqlite3.Connection) -> Any:
            ordered = query
            if query.after is not None:  # an imported completion's original id: its place
                alias = conn.execute(_ALIAS, (project, query.after)).fetchone()
                if alias is not None:
                    ordered = dataclasses.replace(query, after=alias[0])
            if query.search is not None:
                return search_page(conn, project, ordered)
            if len(ordered.metadata) > 1:  # no statistics here: look which pair is sparsest
                reach = reach_sql(project, ordered)
                reaches = conn.execute(for_sqlite(reach[0]), reach[1]).fetchone()
                ordered = sparsest_first(ordered, reaches)
            sql, params = list_sql(project, ordered, "sqlite")
            return conn.execute(for_sqlite(sql), params).fetchall()

        rows = await self._read(page)
        return [StoredText(completion, metadata) for completion, metadata in rows]

    # Last, because inside the class body its name shadows the builtin `list`.
    async def list(self, project: str, query: ListQuery) -> list[dict[str, Any]]:
        return [row.decode() for row in await self.list_stored(project, query)]
