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

import sqlite3
from typing import Any

from chatkeep.protocol.queries import ListQuery
from chatkeep.protocol.search import fts5_match
from chatkeep.store.queries import id_bounds, list_sql, reach_sql, sparsest_first
from chatkeep.store.schema import for_sqlite
from chatkeep.store.search_index import SLOT_BITS, SLOTS, id_key
from chatkeep.store.search_sql import sqlite_search_sql

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
