"""Full-text search in both stores: the index each keeps (a page's SQL is `search_sql`).

What is searched: the text of the input messages (string content, content parts' `text`,
tool calls' and function calls' `arguments`) and of the answer (each choice's `content`
and tool-call `arguments`), and the index follows every write:

- SQLite: a contentless FTS5 table `completion_search` (no second copy of the text). A
  trigger queues each new content row (`completion_search_pending`), which the store's
  `SearchIndexer` indexes in batches, every second and before each search; a trigger on
  delete (the API's, a purge's) takes the row out of the index, or off the queue. SQLite
  extracts the text from the stored JSON itself (`sqlite_text_sql`). The index's rowid is
  the content row's, chosen from the completion id: the id's leading eight characters (its
  minting time to about 33 ms) shifted left by 15 bits, plus the first free slot of that
  interval. FTS5 walks its matches in rowid order, which is therefore id order between
  intervals; a page walks them from the cursor and stops after `limit + 1`, reading the
  boundary interval whole to order it by id (`search_page` in `sqlite_search`). 32,768
  completions per interval is the ceiling.
- PostgreSQL: a `tsvector` column on `completion_content` with a GIN index, in every week
  partition. The store computes each new row's vector from the strings `search_strings`
  picks out in Python (making `jsonb` of the stored JSON to pick them in SQL cost 0.3 ms
  of the database's time per insert); the migration indexes rows stored before with the
  SQL function `chatkeep_search_vector`, which picks the same strings. A page walks the
  weeks like a list (`postgres_search`); in each the planner picks the GIN index (a rare
  word), the id order with a filter (a common one), or a metadata pair (a sparse one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    spaced = (
        f"replace(replace(replace({column}, '\\\\', char(1)), '\\u0000', ' '), char(1), '\\\\')"
    )
    # Most text has no NUL: one scan instead of three copies (7 of 18 us a row).
    return f"CASE WHEN instr({column}, '\\u0000') THEN {spaced} ELSE {column} END"


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
    # A new row waits here to be indexed with others (`sqlite_search.SearchIndexer`): FTS5
    # writes a segment per transaction, which cost 50 us a commit of the writer's small
    # group commits, and about 4 us a row in batches of hundreds.
    "CREATE TABLE completion_search_pending (id INTEGER PRIMARY KEY)",
    """CREATE TRIGGER completion_search_insert AFTER INSERT ON completion_content BEGIN
        INSERT INTO completion_search_pending (id) VALUES (new.rowid);
    END""",
    # A contentless table forgets a row when told the text it indexed: the same extraction
    # from the same (never updated) row; a row not indexed yet only leaves the queue.
    f"""CREATE TRIGGER completion_search_delete AFTER DELETE ON completion_content BEGIN
        INSERT INTO completion_search (completion_search, rowid, body)
        SELECT 'delete', old.rowid, {sqlite_text_sql("old")}
        WHERE NOT EXISTS (SELECT 1 FROM completion_search_pending WHERE id = old.rowid);
        DELETE FROM completion_search_pending WHERE id = old.rowid;
    END""",
    f"""INSERT INTO completion_search (rowid, body)
        SELECT rowid, {sqlite_text_sql("completion_content")} FROM completion_content""",
)


# FTS5 then forgets a deleted row's words at once, rewriting the pages that hold them
# (SQLite 3.42: `sqlite_driver`), where a delete marker left them until segments merged.
# One merge of the whole index drops the words of the rows deleted before (docs/lifecycle.md).
SQLITE_SECURE_DELETE_MIGRATION = (
    "INSERT INTO completion_search (completion_search, rank) VALUES ('secure-delete', 1)",
    "INSERT INTO completion_search (completion_search) VALUES ('optimize')",
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
    # On the partitioned table, so in every week partition and those made later. Rows
    # stored before are indexed here, by the SQL function; the store then writes each new
    # row's vector from `search_strings`, the same strings in the same order (tested).
    "ALTER TABLE completion_content ADD COLUMN search tsvector",
    "UPDATE completion_content SET search = chatkeep_search_vector(messages, completion)",
    "CREATE INDEX completion_content_search ON completion_content USING gin (search)",
    "ANALYZE completion_content",
)
# A new content row's vector, from `search_strings` as a JSON array.
POSTGRES_VECTOR_SQL = """jsonb_to_tsvector('simple', {strings}::jsonb, '["string"]')"""


def _texts(values: object) -> list[str]:
    return [value for value in values if isinstance(value, str)]  # type: ignore[attr-defined]


def search_strings(messages: list[dict[str, Any]], completion: dict[str, Any]) -> list[str]:
    """What is searched of a completion, as `chatkeep_search_vector` takes it from the
    stored JSON (`_MESSAGE_PATHS`, then `_ANSWER_PATHS`, each over every message or
    choice), with NUL characters as spaces (`jsonb` has none). A few microseconds on the
    create path, against about 0.3 ms of PostgreSQL's time to make `jsonb` of the JSON."""
    contents, parts, calls, functions = [], [], [], []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            contents.append(content)
        elif isinstance(content, list):
            parts += _texts(p.get("text") for p in content if isinstance(p, dict))
        calls += _calls(message)
        functions += _function(message)
    answers, answer_calls, answer_functions = [], [], []
    for choice in completion.get("choices") or ():
        answer = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(answer, dict):
            answers += _texts([answer.get("content")])
            answer_calls += _calls(answer)
            answer_functions += _function(answer)
    found = contents + parts + calls + functions + answers + answer_calls + answer_functions
    return [text.replace("\x00", " ") for text in found]


def _calls(message: dict[str, Any]) -> list[str]:
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return []
    functions = (c.get("function") for c in calls if isinstance(c, dict))
    return _texts(f.get("arguments") for f in functions if isinstance(f, dict))


def _function(message: dict[str, Any]) -> list[str]:
    call = message.get("function_call")
    return _texts([call.get("arguments")]) if isinstance(call, dict) else []
