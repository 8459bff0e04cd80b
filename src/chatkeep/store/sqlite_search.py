"""A search page on SQLite: FTS5's matches walked in id order from the cursor.

The index's rowids follow the ids between 33 ms intervals (`search_sql`), so the walk
takes matches in rowid order from the cursor's interval and stops at `limit + 1`; only the
interval it stopped in can hold them out of id order, so that one is read whole and the
page sorted by id. A page costs what its matches up to the page's end cost, whether the
word is rare or in every completion.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from chatkeep.protocol.queries import ListQuery
from chatkeep.store.queries import id_bounds
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


def search_page(conn: sqlite3.Connection, project: str, query: ListQuery) -> list[Any]:
    """Up to `query.limit + 1` rows (completion, metadata) of a search page, in id order."""
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
