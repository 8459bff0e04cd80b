"""The SQLite library behind the SQLite store, and the version it must be.

The store needs SQLite 3.42 or newer: its search index forgets a deleted completion's
words at once only with FTS5's `secure-delete` (3.42); before that, FTS5 leaves them in its
segments until they merge (docs/lifecycle.md). Python's own `sqlite3` links the system's
library, often older (Debian 12 has 3.40.1), so on Linux and macOS the store speaks through
`sqlean.py`, the same module built with its own SQLite (3.50), the same everywhere. Where it
has no wheel (Windows), Python's own is used, which python.org's builds bundle new enough.

Everything that opens the store's file in this process goes through this one module: two
SQLite libraries in one process must not open the same file (each would drop the other's
POSIX locks: sqlite.org/howtocorrupt.html, 2.2.1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same API: type-checked as Python's own
    import sqlite3
else:
    try:
        import sqlean as sqlite3
    except ImportError:  # pragma: no cover - no sqlean.py wheel for this platform
        import sqlite3

MIN_VERSION = (3, 42, 0)


def too_old() -> str | None:
    """Why this SQLite cannot serve the store, or None."""
    if sqlite3.sqlite_version_info >= MIN_VERSION:
        return None
    need = ".".join(map(str, MIN_VERSION))
    return (
        f"the SQLite store needs SQLite {need} or newer, for secure deletes in its search "
        f"index; this Python links {sqlite3.sqlite_version}. Install sqlean.py "
        "(`pip install sqlean.py`), which brings its own, or use a Python built with a newer "
        "SQLite"
    )


__all__ = ["MIN_VERSION", "sqlite3", "too_old"]
