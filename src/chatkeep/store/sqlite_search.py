"""A search page on SQLite: FTS5's matches walked in id order from the cursor.

With a metadata filter whose pair is sparser near the cursor than the words, the page is
the list's walk of that pair instead, each row checked against the words by rowid.
Otherwise the index's rowids follow the ids between 33 ms intervals (`search_sql`), so the walk
takes matches in rowid order from the cursor's interval and stops at `limit + 1`; only the
interval it stopped in can hold them out of id order, so that one is read whole and the
page sorted by id. A page costs what its matches up to the page's end cost, whether the
word is rare or in every completion.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from chatkeep.protocol.queries import ListQuery
from chatkeep.protocol.search import fts5_match
from chatkeep.store.queries import id_bounds, list_sql, reach_sql, sparsest_first
from chatkeep.store.schema import for_sqlite
from chatkeep.store.search_index import SLOT_BITS, SLOTS, id_key, sqlite_text_sql
from chatkeep.store.search_sql import sqlite_search_sql
from chatkeep.store.sqlite_driver import sqlite3

logger = logging.getLogger(__name__)
_LOWEST, _HIGHEST = 0, (1 << 63) - 1


def rowid_range(query: ListQuery) -> tuple[int, int]:
    """The rowids the page's matches can have: from the intervals of its lowest and highest
    possible ids (the cursor and the creation-time range), inclusive."""
    low, high = id_bounds(query)
    lows = [low] if low is not None else []
    highs = [high] if high is not None else []
    if query.after is not None:
        (lows if query.order == "asc" else highs).append(query.after)
    first = id_key(max(lows)) << SLOT_BITS if lows else _LOWEST
    last = ((id_key(min(highs)) + 1) << SLOT_BITS) - 1 if highs else _HIGHEST
    return first, last


# How many matches, or metadata entries, `_sparser_pair` looks at from the cursor.
REACH_DEPTH = 64


def _fts_reach_sql(query: ListQuery) -> str:
    direction = "ASC" if query.order == "asc" else "DESC"
    return (
        "SELECT rowid FROM completion_search WHERE completion_search MATCH ? "
        f"AND rowid BETWEEN ? AND ? ORDER BY rowid {direction} LIMIT 1 OFFSET {REACH_DEPTH - 1}"
    )


def _sparser_pair(conn: sqlite3.Connection, project: str, query: ListQuery) -> ListQuery | None:
    """The query with its sparsest metadata pair first, when that pair is sparser near the
    cursor than the words are (its `REACH_DEPTH`-th entry lies farther from the cursor);
    None when the words are sparser. A short walk of each (`queries.reach_sql`)."""
    assert query.search is not None
    first, last = rowid_range(query)
    fts = conn.execute(_fts_reach_sql(query), (fts5_match(query.search), first, last)).fetchone()
    if fts is None:  # fewer matches than the depth: the words drive
        return None
    sql, params = reach_sql(project, query)
    reaches = conn.execute(for_sqlite(sql), params).fetchone()
    ordered = sparsest_first(query, reaches)
    pair = reaches[list(query.metadata).index(next(iter(ordered.metadata)))]
    if pair is None:
        return ordered
    pair_key, fts_key = id_key(pair), fts[0] >> SLOT_BITS
    farther = pair_key > fts_key if query.order == "asc" else pair_key < fts_key
    return ordered if farther else None


def search_page(conn: sqlite3.Connection, project: str, query: ListQuery) -> list[Any]:
    """Up to `query.limit + 1` rows (completion, metadata) of a search page, in id order."""
    assert query.search is not None
    if query.metadata:
        by_pair = _sparser_pair(conn, project, query)
        if by_pair is not None:
            sql, params = list_sql(project, by_pair, "sqlite", fts_match=fts5_match(query.search))
            return list(conn.execute(for_sqlite(sql), params).fetchall())
    wanted = query.limit + 1
    first, last = rowid_range(query)

    def matches(rowids: tuple[int, int], limit: int | None) -> list[Any]:
        sql, params = sqlite_search_sql(project, query, rowids, limit)
        return conn.execute(for_sqlite(sql), params).fetchall()

    rows = matches((first, last), wanted)
    if len(rows) == wanted:
        interval = rows[-1][3] >> SLOT_BITS
        start = interval << SLOT_BITS
        rows = [row for row in rows if row[3] >> SLOT_BITS != interval]
        rows += matches((max(first, start), min(last, start + SLOTS - 1)), None)
    rows.sort(key=lambda row: row[0], reverse=query.order == "desc")
    return [(row[1], row[2]) for row in rows[:wanted]]


# Rows indexed in one write (one FTS5 segment); a backlog takes several.
INDEX_BATCH = 2000
# How often the indexer looks for new rows: at most this stale, a search sees none stale.
INDEX_INTERVAL_SECONDS = 1.0
_HAS_PENDING = "SELECT EXISTS (SELECT 1 FROM completion_search_pending)"
_PENDING = f"SELECT id FROM completion_search_pending ORDER BY id LIMIT {INDEX_BATCH}"
_INDEX = (
    f"INSERT INTO completion_search (rowid, body) SELECT cc.rowid, {sqlite_text_sql('cc')} "
    "FROM completion_content AS cc WHERE cc.rowid IN (SELECT value FROM json_each(?))"
)
_INDEXED = "DELETE FROM completion_search_pending WHERE id IN (SELECT value FROM json_each(?))"


def has_pending(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute(_HAS_PENDING).fetchone()[0])


def index_pending(conn: sqlite3.Connection) -> int:
    """Index up to `INDEX_BATCH` waiting rows, in the caller's write transaction; how many."""
    ids = [row[0] for row in conn.execute(_PENDING)]
    if ids:
        batch = json.dumps(ids)
        conn.execute(_INDEX, (batch,))
        conn.execute(_INDEXED, (batch,))
    return len(ids)


Read = Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]


class SearchIndexer:
    """Indexes the content rows waiting in `completion_search_pending`, in batches: every
    `INDEX_INTERVAL_SECONDS` in the background, and before every search (`catch_up`), so a
    search finds every completion stored before it; a create pays only for its queue row.
    Any process on the file may index any row: each batch is one write transaction."""

    def __init__(self, read: Read, write: Read) -> None:
        self._read = read
        self._write = write

    async def catch_up(self) -> None:
        while await self._read(has_pending):
            if not await self._write(index_pending):
                return

    async def run(self) -> None:
        while True:
            await asyncio.sleep(INDEX_INTERVAL_SECONDS)
            try:
                await self.catch_up()
            except Exception as exc:  # a store that is down now may be up at the next tick
                logger.warning("could not index stored completions for search: %s", exc)
