"""Opening an SQLite file for the store: connections, the writer's pragmas, why a file
cannot be opened, and applying migrations."""

from __future__ import annotations

import os
from pathlib import Path

from chatkeep.store.schema import MIGRATIONS_TABLE, MigrationPlan
from chatkeep.store.sqlite_driver import sqlite3


def connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    # Autocommit mode: transactions are begun and ended explicitly, never implicitly.
    # Connections are handed between threads (opened in one, closed in another), never shared.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    return conn


def prepare_writer(conn: sqlite3.Connection, synchronous: str) -> None:
    conn.execute("PRAGMA journal_mode = WAL")  # persistent: a no-op after the first time
    # NORMAL in WAL mode writes each commit to the WAL before returning, so a killed
    # process loses nothing acknowledged; FULL also fsyncs, for power loss.
    conn.execute(f"PRAGMA synchronous = {'FULL' if synchronous == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys = ON")
    # Deleted rows are overwritten with zeros, not left in free space (docs/lifecycle.md).
    conn.execute("PRAGMA secure_delete = ON")
    # A purge's deletes rewrite pages all over the search index: a page cache of up to
    # 64 MiB (SQLite's default is 2 MiB) keeps them from being read again and again.
    conn.execute("PRAGMA cache_size = -65536")


def unopenable(path: Path) -> str | None:
    """Why SQLite cannot open `path` (it says only "unable to open database file"), when
    the file system tells. WAL mode needs the folder writable too, for its side files."""
    folder = path.parent
    if not folder.exists():
        return f"the folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if path.is_dir():
        return "that path is a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable (read-only file system or permissions)"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return "the file is not readable and writable (permissions)"
    return None


def applied(conn: sqlite3.Connection) -> list[str]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chatkeep_migrations'"
    ).fetchone()
    if exists is None:
        return []
    return [row[0] for row in conn.execute("SELECT name FROM chatkeep_migrations")]


def migrate(conn: sqlite3.Connection, plan: MigrationPlan) -> list[str]:
    """Apply what `plan` picks in one transaction; the write lock makes racing starts safe."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(MIGRATIONS_TABLE["sqlite"])
        todo = plan(applied(conn))
        for migration in todo:
            for statement in migration.sqlite:
                conn.execute(statement)
            conn.execute("INSERT INTO chatkeep_migrations (name) VALUES (?)", (migration.name,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return [m.name for m in todo]
