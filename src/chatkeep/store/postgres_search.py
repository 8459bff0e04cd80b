"""A search page on PostgreSQL: the weeks walked as a list walks them (`postgres_weeks`),
each asked for the matches still missing of the page.

Each week's statement is planned for its values, not once for all (`plan_cache_mode =
force_custom_plan`, for this transaction only): whether to drive from the GIN index (a rare
word), from the id order with the match as a filter (a common word), or from a metadata
pair (a sparse filter) depends on how common the words and pairs are, which a generic plan
cannot see. Measured on 20,000 rows, a common word with a sparse pair took 255 ms a page
with the cached generic plan, 0.1 ms planned for its values (2 ms of planning).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from chatkeep.protocol.queries import ListQuery
from chatkeep.store.postgres_faults import Connection
from chatkeep.store.postgres_weeks import Span, walked
from chatkeep.store.search_sql import postgres_search_sql


async def search_page(
    conn: Connection, ordered: Sequence[Span], project: str, query: ListQuery
) -> list[Any]:
    """Up to `query.limit + 1` rows (completion, metadata) of a search page, week after
    week, in id order."""
    wanted = query.limit + 1
    rows: list[Any] = []
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        for span in walked(ordered, query):
            part = dataclasses.replace(query, limit=wanted - len(rows) - 1)
            sql, params = postgres_search_sql(project, part, span.tables)
            rows += await conn.fetch(sql, *params)
            if len(rows) >= wanted:
                break
    return rows
