"""Full-text search in both stores: the index each keeps (a page's SQL is `search_sql`).

What is searched: the text of the input messages (string content, content parts' `text`,
tool calls' and function calls' `arguments`) and of the answer (each choice's `content`
and tool-call `arguments`). Each engine extracts it from the stored JSON itself, so the
create path does no work of its own for the index, and the index follows every write:

- SQLite: a contentless FTS5 table `completion_search` (no second copy of the text),
  filled and emptied by triggers on `completion_content`, so inserts, deletes and purges
  all keep it exact. Its rowid is the content row's, and that rowid is chosen from the
  completion id: the id's leading eight characters (its minting time to about 33 ms) shifted
  left by 15 bits, plus the first free slot of that interval. FTS5 walks its matches in
  rowid order, which is therefore id order between intervals; a page walks them from the
  cursor and stops after `limit + 1`, reading the boundary interval whole to order it by id
  (`search_page` in `sqlite_search`). 32,768 completions per interval is the ceiling.
- PostgreSQL: a generated `tsvector` column on `completion_content` with a GIN index, in
  every week partition. A page walks the weeks like a list (`postgres_weeks`); in each the
  planner picks the GIN index (a rare word) or the id order with a filter (a common one).
"""

from __future__ import annotations

from collections.abc import Sequence

from chatkeep.ids import BASE62, COMPLETION_PREFIX

SLOT_BITS = 15
SLOTS = 1 << SLOT_BITS
KEY_CHARS = 8  # 62**8 << 15 stays below 2**63: a rowid
_KEY_START = len(COMPLETION_PREFIX)
_DIGITS = {char: value for value, char in enumerate(BASE62)}
# Between two values in the SQLite index, so that a phrase never spans two messages (as
# PostgreSQL's `jsonb_to_tsvector` leaves a gap between values). A private-use character is
# a token to FTS5's `unicode61`; `protocol.search` keeps it out of queries.
SQLITE_SEPARATOR = "\ue000"


def id_key(completion_id: str) -> int:
    """The interval of `completion_id`: its leading eight base62 digits as a number, which
    orders as the ids do (any id of the `chatcmpl-` + 29 base62 shape)."""
    value = 0
    for char in completion_id[_KEY_START : _KEY_START + KEY_CHARS]:
        value = value * 62 + _DIGITS[char]
    return value


def sqlite_key_sql(column: str) -> str:
    """`id_key` of `column` in SQLite's SQL."""
    digits = [
        f"(instr('{BASE62}', substr({column}, {_KEY_START + 1 + n}, 1)) - 1) * {62 ** (7 - n)}"
        for n in range(KEY_CHARS)
    ]
    return "(" + " + ".join(digits) + ")"


def _sqlite_nul_free(column: str) -> str:
    """`column`'s JSON with each `\\u0000` escape a space: SQLite's JSON functions end a
    string at a NUL, and the words after it would not be indexed. Escaped backslashes
    are set aside first (`\\\\u0000` is a backslash and `u0000`), as U+0001, which JSON
    text never holds unescaped."""
    return f"replace(replace(replace({column}, '\\\\', char(1)), '\\u0000', ' '), char(1), '\\\\')"


def sqlite_text_sql(row: str) -> str:
    """The searched text of the content row `row` (`new`, `old`, or a table alias)."""
    return (
        f"(SELECT group_concat(value, ' {SQLITE_SEPARATOR} ') FROM ("
        f"SELECT value FROM json_tree({_sqlite_nul_free(row + '.messages')}) "
        "WHERE type = 'text' AND key IN ('content', 'text', 'arguments') UNION ALL "
        f"SELECT value FROM json_tree({_sqlite_nul_free(row + '.completion')}, '$.choices') "
        "WHERE type = 'text' AND key IN ('content', 'arguments')))"
    )


# A new content row's rowid: the first free slot of its id's interval (`?1`: its base).
SQLITE_ROWID_SQL = (
    f"coalesce((SELECT max(rowid) + 1 FROM completion_content "
    f"WHERE rowid BETWEEN ?1 AND ?1 + {SLOTS - 1}), ?1)"
)

SQLITE_MIGRATION = (
    # Every content row moves to its id's rowid (old rowids are small: no collision).
    "CREATE TABLE chatkeep_search_rowids (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)",
    f"""INSERT INTO chatkeep_search_rowids (old, new)
        SELECT rowid, key * {SLOTS} + row_number() OVER (PARTITION BY key ORDER BY id) - 1
        FROM (SELECT rowid, id, {sqlite_key_sql("id")} AS key FROM completion_content)""",
    """UPDATE completion_content SET rowid =
        (SELECT new FROM chatkeep_search_rowids WHERE old = completion_content.rowid)""",
    "DROP TABLE chatkeep_search_rowids",
    "CREATE VIRTUAL TABLE completion_search USING fts5("
    "body, content = '', tokenize = 'unicode61 remove_diacritics 0')",
    f"""CREATE TRIGGER completion_search_insert AFTER INSERT ON completion_content BEGIN
        INSERT INTO completion_search (rowid, body) VALUES (new.rowid, {sqlite_text_sql("new")});
    END""",
    # A contentless table forgets a row when told the text it indexed: the same extraction
    # from the same (never updated) row.
    f"""CREATE TRIGGER completion_search_delete AFTER DELETE ON completion_content BEGIN
        INSERT INTO completion_search (completion_search, rowid, body)
        VALUES ('delete', old.rowid, {sqlite_text_sql("old")});
    END""",
    f"""INSERT INTO completion_search (rowid, body)
        SELECT rowid, {sqlite_text_sql("completion_content")} FROM completion_content""",
)


def _paths(column: str, paths: Sequence[str]) -> str:
    return " || ".join(f"jsonb_path_query_array({column}, '{path}')" for path in paths)


_MESSAGE_PATHS = (
    '$[*].content ? (@.type() == "string")',
    "$[*].content[*].text",
    "$[*].tool_calls[*].function.arguments",
    "$[*].function_call.arguments",
)
_ANSWER_PATHS = (
    '$.choices[*].message.content ? (@.type() == "string")',
    "$.choices[*].message.tool_calls[*].function.arguments",
    "$.choices[*].message.function_call.arguments",
)
# The stored `json` columns keep any escape as sent, `jsonb` takes neither `\u0000` nor a
# lone surrogate: those escapes (not an escaped backslash before `u0000`) become spaces
# in what is indexed, and the stored text stays as it is. The cast alone when there are
# none, which `strpos` tells cheaply.
_JSONB_FUNCTION = r"""CREATE FUNCTION chatkeep_search_jsonb(value json) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN strpos(value::text, '\u') = 0 THEN value::jsonb
        ELSE regexp_replace(value::text,
            '(?<!\\)((?:\\\\)*)\\u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})', '\1 ', 'g')::jsonb
    END"""

# What is indexed of a content row: each column made `jsonb` once, then its paths.
_VECTOR_FUNCTION = f"""CREATE FUNCTION chatkeep_search_vector(messages json, completion json)
    RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (SELECT jsonb_to_tsvector('simple', {_paths("m", _MESSAGE_PATHS)} ||
                {_paths("c", _ANSWER_PATHS)}, '["string"]')
            FROM (SELECT chatkeep_search_jsonb(messages) AS m,
                         chatkeep_search_jsonb(completion) AS c) AS j)"""

POSTGRES_MIGRATION = (
    _JSONB_FUNCTION,
    _VECTOR_FUNCTION,
    # Added to the partitioned table, so to every week partition, and to those made later
    # (`postgres_partitions.ensure` copies generated columns); each rewritten once.
    "ALTER TABLE completion_content ADD COLUMN search tsvector "
    "GENERATED ALWAYS AS (chatkeep_search_vector(messages, completion)) STORED",
    "CREATE INDEX completion_content_search ON completion_content USING gin (search)",
    "ANALYZE completion_content",
)
