"""The read SQL of both stores: one completion by id, and a list page.

Written once in PostgreSQL's `$n` form; `schema.for_sqlite` turns it into SQLite's `?n`.
Every statement names its tables through `Tables`: on SQLite, and on PostgreSQL when a
statement may read every partition, the tables themselves; on PostgreSQL a read of one
week's completions names that week's partitions (`postgres_weeks`), which plans and runs
like a small unpartitioned table.

Only a completion with its content is served: a record whose content retention has passed
(or that was kept without content) is absent to every call, deletion included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chatkeep.ids import completion_id_floor
from chatkeep.protocol.queries import ListQuery
from chatkeep.store.schema import Engine


@dataclass(frozen=True, slots=True)
class Tables:
    """The names of the three completion tables a statement reads."""

    records: str = "completions"
    content: str = "completion_content"
    metadata: str = "completion_metadata"


PLAIN = Tables()


def numbered_params() -> tuple[list[Any], Callable[[Any], str]]:
    """The parameters of a statement being written, and the call that adds one and gives
    its placeholder (`$1`, `$2`, ...)."""
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    return params, param


def get_sql(t: Tables = PLAIN) -> str:
    return (
        f"SELECT cc.completion, c.metadata FROM {t.records} AS c "
        f"JOIN {t.content} AS cc ON cc.project = c.project AND cc.id = c.id "
        "WHERE c.project = $1 AND c.id = $2"
    )


def messages_sql(t: Tables = PLAIN) -> str:
    return f"SELECT messages FROM {t.content} WHERE project = $1 AND id = $2"


def content_sql(t: Tables = PLAIN) -> str:
    return f"SELECT completion FROM {t.content} WHERE project = $1 AND id = $2"


def delete_sql(t: Tables = PLAIN) -> str:
    """SQLite's delete: the record, when it has content (foreign keys take the rest)."""
    return (
        f"DELETE FROM {t.records} WHERE project = $1 AND id = $2 AND EXISTS (SELECT 1 FROM "
        f"{t.content} AS cc WHERE cc.project = $1 AND cc.id = $2) RETURNING id"
    )


# At most this many model names answer `MODELS_SQL` (a filter's suggestions, not a report).
MAX_MODELS = 500

# The distinct models of a project's completions, in name order: a loose index scan of
# `completions_model` (project, model, id), one index probe per model, however many
# completions each has (neither engine skips through an index by itself here).
MODELS_SQL = f"""
WITH RECURSIVE seen(model) AS (
    SELECT min(model) FROM completions WHERE project = $1
    UNION ALL
    SELECT (SELECT min(c.model) FROM completions AS c WHERE c.project = $1 AND c.model > seen.model)
    FROM seen WHERE seen.model IS NOT NULL
)
SELECT model FROM seen WHERE model IS NOT NULL LIMIT {MAX_MODELS}
"""


def list_sql(
    project: str,
    query: ListQuery,
    engine: Engine,
    t: Tables = PLAIN,
    fts_match: str | None = None,
) -> tuple[str, list[Any]]:
    """The page query of `list`, in `$n` form, and its parameters.

    With metadata filters the first pair drives: its index is walked in id order from the
    cursor, each further pair is checked by an index probe, and only then is the
    completion read; the walk stops after `limit + 1` rows. The stores put the sparsest
    pair first (`reach_sql`, `sparsest_first`), so a filter costs what its sparsest pair
    costs (on SQLite, a search page whose pair is sparser than its words is this walk with
    `fts_match` checked for each row: `sqlite_search`). Without filters, the primary key
    (or the model index) is walked from the cursor, and each record's content is an index
    probe.

    The order is fixed in the SQL, not left to a planner: SQLite keeps no statistics, and
    PostgreSQL's estimates cannot see where the cursor is (left to itself it merge-joined
    the content table from its first row: 1.5 s a page at 1M rows) nor, in the generic plan
    of a prepared statement, which value is rare. On SQLite `CROSS JOIN` keeps the loops in
    the written order; on PostgreSQL each probe is a `LATERAL` subquery with `OFFSET 0`,
    which the planner can neither flatten nor reorder.
    """
    params, param = numbered_params()

    def probe(table: str, alias: str, columns: str, match: str) -> str:
        """A join to the one row of `table` that `match` names, as a nested-loop probe."""
        if engine == "sqlite":
            where.append(match.format(t=alias))
            return f" CROSS JOIN {table} AS {alias}"
        found = f"SELECT {columns.format(t='p')} FROM {table} AS p WHERE {match.format(t='p')}"
        return f" CROSS JOIN LATERAL ({found} OFFSET 0) AS {alias}"

    direction, compare = ("ASC", ">") if query.order == "asc" else ("DESC", "<")
    pairs = list(query.metadata.items())
    where: list[str] = []
    record = "{t}.id, {t}.model, {t}.metadata"
    if pairs:
        order_column = "m0.completion_id"
        key, value = pairs[0]
        where += [f"m0.project = {param(project)}", f"m0.key = {param(key)}"]
        where.append(f"m0.value = {param(value)}")
        for n, (key, value) in enumerate(pairs[1:], start=1):
            where.append(
                f"EXISTS (SELECT 1 FROM {t.metadata} AS m{n} "
                f"WHERE m{n}.project = m0.project AND m{n}.completion_id = m0.completion_id "
                f"AND m{n}.key = {param(key)} AND m{n}.value = {param(value)} LIMIT 1 OFFSET 0)"
            )
        source = f"{t.metadata} AS m0" + probe(
            t.records, "c", record, "{t}.project = m0.project AND {t}.id = m0.completion_id"
        )
        scope = "m0.project"
    else:
        order_column = "c.id"
        source = f"{t.records} AS c"
        if engine == "sqlite" and query.model is not None:
            # With no statistics, SQLite 3.50 walks the primary key's id range for a
            # descending page and filters the model; the model's index is the walk.
            source += " INDEXED BY completions_model"
        where.append(f"c.project = {param(project)}")
        scope = "c.project"
    if query.model is not None:
        where.append(f"c.model = {param(query.model)}")
    if query.after is not None:
        where.append(f"{order_column} {compare} {param(query.after)}")
    low, high = id_bounds(query)
    if low is not None:
        where.append(f"{order_column} >= {param(low)}")
    if high is not None:
        where.append(f"{order_column} < {param(high)}")
    # Records older than the oldest content (retention dropped theirs) are never served:
    # the walk starts, or stops, there instead of passing over every one of them.
    where.append(
        f"{order_column} >= (SELECT min(h.id) FROM {t.content} AS h "
        f"WHERE h.project = {param(project)})"
    )
    source += probe(
        t.content,
        "cc",
        "{t}.completion",
        f"{{t}}.project = {scope} AND {{t}}.id = {order_column}",
    )
    if fts_match is not None:  # SQLite, a search page driven from a sparse pair
        where.append(
            "EXISTS (SELECT 1 FROM completion_search AS s WHERE s.completion_search "
            f"MATCH {param(fts_match)} AND s.rowid = cc.rowid)"
        )
    sql = (
        f"SELECT cc.completion, c.metadata FROM {source} "
        f"WHERE {' AND '.join(where)} "
        # The limit is written in, not a parameter (it is a validated int): a generic plan
        # then knows the page is small, instead of costing a tenth of the table.
        f"ORDER BY {order_column} {direction} LIMIT {int(query.limit) + 1}"
    )
    return sql, params


def id_bounds(query: ListQuery) -> tuple[str | None, str | None]:
    """The ids of a page's creation-time range: the lowest it may hold and the one above
    it. Ids begin with their minting time in milliseconds, so "created after T" (whole
    seconds) is "id at or above the floor of T + 1 s", and "before T" is "below T's"."""
    low = high = None
    if query.created_after is not None:
        low = completion_id_floor((query.created_after + 1) * 1000)
    if query.created_before is not None:
        high = completion_id_floor(query.created_before * 1000)
    return low, high


# How many of a pair's index entries `reach_sql` looks at to tell sparse pairs from dense.
REACH_DEPTH = 64


def reach_sql(project: str, query: ListQuery, t: Tables = PLAIN) -> tuple[str, list[Any]]:
    """One row: for each metadata pair, the id of its `REACH_DEPTH`-th index entry after the
    cursor, in the page's order, or NULL when fewer are left; each a short index walk.

    The pair whose entries reach farthest is the sparsest near the cursor, where the page
    is: driving the page from it walks the fewest entries (`sparsest_first`).
    """
    params, param = numbered_params()

    direction, compare = ("ASC", ">") if query.order == "asc" else ("DESC", "<")
    scope = f"project = {param(project)}"
    if query.after is not None:
        scope += f" AND completion_id {compare} {param(query.after)}"
    low, high = id_bounds(query)
    if low is not None:
        scope += f" AND completion_id >= {param(low)}"
    if high is not None:
        scope += f" AND completion_id < {param(high)}"
    reaches = [
        f"(SELECT completion_id FROM {t.metadata} WHERE {scope} "
        f"AND key = {param(key)} AND value = {param(value)} "
        f"ORDER BY completion_id {direction} LIMIT 1 OFFSET {REACH_DEPTH - 1})"
        for key, value in query.metadata.items()
    ]
    return f"SELECT {', '.join(reaches)}", params


def sparsest_first(query: ListQuery, reaches: Sequence[str | None]) -> ListQuery:
    """`query` with its sparsest pair first (the others keep their order), from the row
    of `reach_sql`: a pair with fewer entries left than the depth, else the farthest."""
    pairs = list(query.metadata.items())
    exhausted = [n for n, reach in enumerate(reaches) if reach is None]
    if exhausted:
        first = exhausted[0]
    else:
        farther = max if query.order == "asc" else min
        first = farther(range(len(pairs)), key=lambda n: str(reaches[n]))
    if first == 0:
        return query
    ordered = dict([pairs[first], *pairs[:first], *pairs[first + 1 :]])
    return dataclasses.replace(query, metadata=ordered)
