"""A search page's SQL on both stores (the index each keeps is `search_index`)."""

from __future__ import annotations

from typing import Any

from chatkeep.protocol.queries import ListQuery
from chatkeep.protocol.search import SearchQuery, fts5_match
from chatkeep.store.queries import Tables, id_bounds, numbered_params


def postgres_tsquery(search: SearchQuery, param: Any) -> str:
    """The query as a `tsquery` expression; the terms are parameters, parsed by PostgreSQL
    (`phraseto_tsquery` for words and phrases, a `:*` prefix of letters and digits)."""
    parts = [
        # PostgreSQL's parser keeps `lazy-dog` whole beside its parts; as a phrase of its
        # parts it matches `lazy dog` too, as SQLite does.
        f"phraseto_tsquery('simple', {param(term.text.replace('-', ' '))})"
        if term.kind == "words"
        else f"to_tsquery('simple', {param(term.text + ':*')})"
        for term in search.terms
    ]
    return "(" + " && ".join(parts) + ")"


def _filters(project: str, query: ListQuery, t: Tables, param: Any, where: list[str]) -> None:
    """The list's filters on the content row `cc` and its record `c`."""
    compare = ">" if query.order == "asc" else "<"
    where.append(f"cc.project = {param(project)}")
    if query.model is not None:
        where.append(f"c.model = {param(query.model)}")
    if query.after is not None:
        where.append(f"cc.id {compare} {param(query.after)}")
    low, high = id_bounds(query)
    if low is not None:
        where.append(f"cc.id >= {param(low)}")
    if high is not None:
        where.append(f"cc.id < {param(high)}")
    for key, value in query.metadata.items():
        where.append(
            f"EXISTS (SELECT 1 FROM {t.metadata} AS m WHERE m.project = cc.project "
            f"AND m.completion_id = cc.id AND m.key = {param(key)} "
            f"AND m.value = {param(value)})"
        )


def postgres_search_sql(project: str, query: ListQuery, t: Tables) -> tuple[str, list[Any]]:
    """A search page in one week's partitions `t`: up to `limit + 1` rows in id order."""
    assert query.search is not None
    params, param = numbered_params()
    where = [f"cc.search @@ {postgres_tsquery(query.search, param)}"]
    _filters(project, query, t, param, where)
    direction = "ASC" if query.order == "asc" else "DESC"
    sql = (
        f"SELECT cc.completion, c.metadata FROM {t.content} AS cc "
        f"JOIN {t.records} AS c ON c.project = cc.project AND c.id = cc.id "
        f"WHERE {' AND '.join(where)} "
        f"ORDER BY cc.id {direction} LIMIT {int(query.limit) + 1}"
    )
    return sql, params


def sqlite_search_sql(
    project: str, query: ListQuery, rowids: tuple[int, int], limit: int | None
) -> tuple[str, list[Any]]:
    """SQLite: the matches with rowids in `rowids` (inclusive), walked in rowid order from
    the page's side, at most `limit` of them (all with None); rows (id, completion,
    metadata, rowid). FTS5 drives (CROSS JOIN keeps the written order)."""
    assert query.search is not None
    params, param = numbered_params()
    where = [
        f"s.completion_search MATCH {param(fts5_match(query.search))}",
        f"s.rowid BETWEEN {param(rowids[0])} AND {param(rowids[1])}",
        "cc.rowid = s.rowid",
        "c.project = cc.project AND c.id = cc.id",
    ]
    _filters(project, query, Tables(), param, where)
    direction = "ASC" if query.order == "asc" else "DESC"
    sql = (
        "SELECT cc.id, cc.completion, c.metadata, s.rowid FROM completion_search AS s "
        "CROSS JOIN completion_content AS cc CROSS JOIN completions AS c "
        f"WHERE {' AND '.join(where)} ORDER BY s.rowid {direction}"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, params
