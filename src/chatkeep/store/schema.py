"""The storage schema both engines share: named migrations, the errors of a mismatched or
violated schema, and JSON in and out of the stored columns (the read SQL is in `queries`).

Migrations are applied in list order and recorded by name in `chatkeep_migrations`. A blank
database gets all of them on `open()`; an older one is refused until `chatkeep db upgrade`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from chatkeep.errors import ChatkeepError
from chatkeep.protocol.codec import encode_json
from chatkeep.store import imports, responses_schema, search_index, usage_schema
from chatkeep.store.stored_text import StoredText
from chatkeep.store.text import unstorable

Engine = Literal["sqlite", "postgres"]
UPGRADE_COMMAND = "chatkeep db upgrade"


@dataclass(frozen=True, slots=True)
class PartitionWeeks:
    """A PostgreSQL migration step that is not a statement: make the week partitions
    (`postgres_partitions`) of every week in which the table `source` has completions."""

    source: str


Statement = str | PartitionWeeks


@dataclass(frozen=True, slots=True)
class Migration:
    """One named step of the schema, as the statements each engine runs for it."""

    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[Statement, ...]

    def statements(self, engine: Engine) -> tuple[Statement, ...]:
        return self.sqlite if engine == "sqlite" else self.postgres


# The bookkeeping table exists before any migration runs, so it is not one of them.
MIGRATIONS_TABLE: dict[Engine, str] = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS chatkeep_migrations (name TEXT PRIMARY KEY, "
        "applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))"
    ),
    "postgres": (
        "CREATE TABLE IF NOT EXISTS chatkeep_migrations (name text PRIMARY KEY, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    ),
}

# The stored object stays raw JSON text; filters read real columns. On PostgreSQL the JSON
# columns are `json`, not `jsonb`: `json` keeps the text as sent (key order, big integers,
# `\u0000` in strings), and no filter needs to look inside it. Text keys use COLLATE "C"
# so that ids order by bytes, as in SQLite, which is what the list cursor relies on.
_COMPLETIONS = Migration(
    name="0001_completions",
    sqlite=(
        """CREATE TABLE completions (
            project TEXT NOT NULL,
            id TEXT NOT NULL,
            model TEXT NOT NULL,
            created INTEGER NOT NULL,
            completion TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            messages TEXT NOT NULL,
            PRIMARY KEY (project, id)
        )""",
    ),
    postgres=(
        """CREATE TABLE completions (
            project text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            model text COLLATE "C" NOT NULL,
            created bigint NOT NULL,
            completion json NOT NULL,
            metadata json NOT NULL DEFAULT '{}',
            messages json NOT NULL,
            PRIMARY KEY (project, id)
        )""",
    ),
)

# One row per metadata pair, in a B-tree ordered (project, key, value, completion_id): a
# `metadata[k]=v` page is an ordered index walk from the cursor that stops at limit+1, on
# both engines. (A GIN index on a JSONB column could only feed a bitmap scan plus a sort of
# every match, which grows with the matches, not the page.) `completions_created` lets old
# completions be purged in batches (`DELETE ... WHERE (project, id) IN (SELECT ... WHERE
# created < $1 LIMIT n)`) without rewriting the table. (0004 replaced both: retention
# walks ids, and PostgreSQL's tables are partitioned by week.)
_FILTERS = Migration(
    name="0002_filter_indexes",
    sqlite=(
        """CREATE TABLE completion_metadata (
            project TEXT NOT NULL,
            completion_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (project, completion_id, key),
            FOREIGN KEY (project, completion_id)
                REFERENCES completions (project, id) ON DELETE CASCADE
        ) WITHOUT ROWID""",
        """INSERT INTO completion_metadata (project, completion_id, key, value)
            SELECT c.project, c.id, m.key, m.value
            FROM completions AS c, json_each(c.metadata) AS m""",
        "CREATE INDEX completion_metadata_filter "
        "ON completion_metadata (project, key, value, completion_id)",
        "CREATE INDEX completions_model ON completions (project, model, id)",
        "CREATE INDEX completions_created ON completions (created)",
    ),
    postgres=(
        """CREATE TABLE completion_metadata (
            project text COLLATE "C" NOT NULL,
            completion_id text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            value text COLLATE "C" NOT NULL,
            PRIMARY KEY (project, completion_id, key),
            FOREIGN KEY (project, completion_id)
                REFERENCES completions (project, id) ON DELETE CASCADE
        )""",
        """INSERT INTO completion_metadata (project, completion_id, key, value)
            SELECT c.project, c.id, m.key, m.value
            FROM completions AS c, json_each_text(c.metadata) AS m""",
        "CREATE INDEX completion_metadata_filter "
        "ON completion_metadata (project, key, value, completion_id)",
        "CREATE INDEX completions_model ON completions (project, model, id)",
        "CREATE INDEX completions_created ON completions (created)",
    ),
)

# API keys (see docs/keys.md): only the hex SHA-256 of each secret is kept, under a unique
# index, for the lookup on every request; `prefix` is the secret's first characters, for
# listings. Keys are never deleted: `revoked` (Unix seconds) ends one, and it stays listed.
_API_KEYS = Migration(
    name="0003_api_keys",
    sqlite=(
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            project TEXT NOT NULL,
            label TEXT,
            prefix TEXT NOT NULL,
            key_hash TEXT NOT NULL,
            created INTEGER NOT NULL,
            last_used INTEGER,
            revoked INTEGER
        )""",
        "CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash)",
    ),
    postgres=(
        """CREATE TABLE api_keys (
            id text COLLATE "C" PRIMARY KEY,
            project text COLLATE "C" NOT NULL,
            label text,
            prefix text NOT NULL,
            key_hash text COLLATE "C" NOT NULL,
            created bigint NOT NULL,
            last_used bigint,
            revoked bigint
        )""",
        "CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash)",
    ),
)

# The data lifecycle (docs/lifecycle.md). A completion becomes a slim record (`completions`:
# the index columns, metadata, usage, finish reasons, latency) plus its content
# (`completion_content`: the stored object and the input messages), so that retention can
# drop the text before the record, and lists walk small rows. Only a completion with its
# content is served; its filter rows (`completion_metadata`) go with its content. Project
# policies (store mode, retention, redaction) live in `projects`, one JSON map per project
# holding only what was set. On PostgreSQL the three completion tables become week
# partitions on the id (`postgres_partitions`), so retention drops whole weeks; there are
# no foreign keys between them there (a partition referenced by one could not be detached
# without a scan of the referencing table), so the store deletes from all three itself.
_LIFECYCLE = Migration(
    name="0004_lifecycle",
    sqlite=(
        """CREATE TABLE completion_content (
            project TEXT NOT NULL,
            id TEXT NOT NULL,
            completion TEXT NOT NULL,
            messages TEXT NOT NULL,
            PRIMARY KEY (project, id),
            FOREIGN KEY (project, id) REFERENCES completions (project, id) ON DELETE CASCADE
        )""",
        """INSERT INTO completion_content (project, id, completion, messages)
            SELECT project, id, completion, messages FROM completions""",
        "ALTER TABLE completions ADD COLUMN usage TEXT",
        "ALTER TABLE completions ADD COLUMN finish_reasons TEXT",
        "ALTER TABLE completions ADD COLUMN latency_ms INTEGER",
        """UPDATE completions SET
            usage = json_extract(completion, '$.usage'),
            finish_reasons = (SELECT json_group_array(json_extract(ch.value, '$.finish_reason'))
                              FROM json_each(completion, '$.choices') AS ch)""",
        "ALTER TABLE completions DROP COLUMN completion",
        "ALTER TABLE completions DROP COLUMN messages",
        """CREATE TABLE projects (
            name TEXT PRIMARY KEY,
            settings TEXT NOT NULL,
            updated INTEGER NOT NULL
        )""",
    ),
    postgres=(
        # The 0003 tables step aside (their index names too), the partitioned ones take
        # their place, get a partition for every week the old ones hold, and their rows.
        "ALTER TABLE completions RENAME TO completions_0003",
        "ALTER TABLE completion_metadata RENAME TO completion_metadata_0003",
        *(
            f"ALTER INDEX {index} RENAME TO {index.replace('completion', 'old_completion')}"
            for index in (
                "completions_pkey",
                "completions_model",
                "completions_created",
                "completion_metadata_pkey",
                "completion_metadata_filter",
            )
        ),
        """CREATE TABLE completions (
            project text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            model text COLLATE "C" NOT NULL,
            created bigint NOT NULL,
            metadata json NOT NULL DEFAULT '{}',
            usage json,
            finish_reasons json,
            latency_ms integer,
            PRIMARY KEY (project, id)
        ) PARTITION BY RANGE (id)""",
        "CREATE INDEX completions_model ON completions (project, model, id)",
        """CREATE TABLE completion_content (
            project text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            completion json NOT NULL,
            messages json NOT NULL,
            PRIMARY KEY (project, id)
        ) PARTITION BY RANGE (id)""",
        """CREATE TABLE completion_metadata (
            project text COLLATE "C" NOT NULL,
            completion_id text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            value text COLLATE "C" NOT NULL,
            PRIMARY KEY (project, completion_id, key)
        ) PARTITION BY RANGE (completion_id)""",
        "CREATE INDEX completion_metadata_filter "
        "ON completion_metadata (project, key, value, completion_id)",
        PartitionWeeks("completions_0003"),
        """INSERT INTO completions
            (project, id, model, created, metadata, usage, finish_reasons)
            SELECT project, id, model, created, metadata,
                NULLIF((completion->'usage')::text, 'null')::json,
                (SELECT json_agg(ch->'finish_reason')
                 FROM json_array_elements(completion->'choices') AS ch)
            FROM completions_0003""",
        """INSERT INTO completion_content (project, id, completion, messages)
            SELECT project, id, completion, messages FROM completions_0003""",
        """INSERT INTO completion_metadata (project, completion_id, key, value)
            SELECT project, completion_id, key, value FROM completion_metadata_0003""",
        "DROP TABLE completion_metadata_0003, completions_0003",
        # The new partitions have no statistics until autovacuum comes by; plans need them.
        "ANALYZE completions, completion_content, completion_metadata",
        """CREATE TABLE projects (
            name text COLLATE "C" PRIMARY KEY,
            settings json NOT NULL,
            updated bigint NOT NULL
        )""",
    ),
)

# Full-text search (`search_index`): an FTS5 index on SQLite, a tsvector column on PostgreSQL.
_SEARCH = Migration(
    name="0005_search",
    sqlite=search_index.SQLITE_MIGRATION,
    postgres=search_index.POSTGRES_MIGRATION,
)

# OpenAI's usage and costs API (`usage_schema`): per-minute sums, and admin keys.
_USAGE = Migration(
    name="0006_usage",
    sqlite=usage_schema.SQLITE_MIGRATION,
    postgres=usage_schema.POSTGRES_MIGRATION,
)

# The Responses API (`responses_schema`): stored responses, chained by reference.
_RESPONSES = Migration(
    name="0007_responses",
    sqlite=responses_schema.SQLITE_MIGRATION,
    postgres=responses_schema.POSTGRES_MIGRATION,
)

# Imports (`imports`): original ids of imported completions, and each import's progress.
_IMPORT = Migration(
    name="0008_import", sqlite=imports.SQLITE_MIGRATION, postgres=imports.POSTGRES_MIGRATION
)

# SQLite's search index forgets deleted words at once (`search_index`); PostgreSQL's GIN
# index loses a deleted row's entries when VACUUM runs (`postgres_purge`).
_SECURE_SEARCH = Migration(
    name="0009_search_secure_delete",
    sqlite=search_index.SQLITE_SECURE_DELETE_MIGRATION,
    postgres=(),
)

MIGRATIONS: tuple[Migration, ...] = (
    _COMPLETIONS,
    _FILTERS,
    _API_KEYS,
    _LIFECYCLE,
    _SEARCH,
    _USAGE,
    _RESPONSES,
    _IMPORT,
    _SECURE_SEARCH,
)


class SchemaError(ChatkeepError):
    """The database's schema is not the one this version of chatkeep works with."""


class SchemaBehindError(SchemaError):
    """The database has an older schema; `chatkeep db upgrade` brings it up to date."""

    def __init__(self, pending: Sequence[str]) -> None:
        self.pending = list(pending)
        count = f"{len(self.pending)} migration{'s' if len(self.pending) != 1 else ''}"
        super().__init__(
            f"The database schema is older than this version of chatkeep ({count} pending: "
            f"{', '.join(self.pending)}). Back up the database, then run `{UPGRADE_COMMAND}`."
        )


class SchemaAheadError(SchemaError):
    """The database was migrated by a newer chatkeep than this one."""

    def __init__(self, unknown: Sequence[str]) -> None:
        self.unknown = list(unknown)
        super().__init__(
            "The database schema is newer than this version of chatkeep (unknown migrations: "
            f"{', '.join(self.unknown)}). Upgrade chatkeep to use this database."
        )


class CompletionExistsError(ChatkeepError):
    """A completion with this id is already stored in this project (ids are minted by us,
    so this is a server fault, not a client's)."""

    def __init__(self, completion_id: str) -> None:
        super().__init__(f"A chat completion with id '{completion_id}' is already stored.")


MigrationPlan = Callable[[Sequence[str]], list[Migration]]


def _check_known(applied: Sequence[str]) -> None:
    known = {m.name for m in MIGRATIONS}
    unknown = [name for name in applied if name not in known]
    if unknown:
        raise SchemaAheadError(unknown)


def plan_open(applied: Sequence[str]) -> list[Migration]:
    """What `open()` applies: everything on a blank database, nothing otherwise.

    Raises `SchemaBehindError` when an older schema has pending migrations, because an
    upgrade of a database that holds data is an operator's decision (backups first).
    """
    _check_known(applied)
    if not applied:
        return list(MIGRATIONS)
    pending = [m.name for m in MIGRATIONS if m.name not in applied]
    if pending:
        raise SchemaBehindError(pending)
    return []


def plan_upgrade(through: str | None = None) -> MigrationPlan:
    """A plan applying the pending migrations in order, up to and including `through`."""
    names = [m.name for m in MIGRATIONS]
    if through is not None and through not in names:
        raise ValueError(f"Unknown migration {through!r}; known: {', '.join(names)}")
    last = names.index(through) if through is not None else len(names) - 1

    def plan(applied: Sequence[str]) -> list[Migration]:
        _check_known(applied)
        return [m for m in MIGRATIONS[: last + 1] if m.name not in applied]

    return plan


def pending_names(applied: Sequence[str]) -> list[str]:
    _check_known(applied)
    return [m.name for m in MIGRATIONS if m.name not in applied]


def dump_json(value: Any, field: str) -> str:
    """JSON text for a stored column (via the wire codec, which takes any integer); `field`
    is named in the 400 when `value` holds a lone surrogate, which is not UTF-8."""
    try:
        return encode_json(value).decode()
    except UnicodeEncodeError:
        raise unstorable(field) from None


def load_json(text: str) -> Any:
    # orjson keeps every integer in [-2**63, 2**64) exact (int64 seeds included); larger
    # ones come back as floats, just as they do from a request body.
    return orjson.loads(text)


def record_columns(completion: dict[str, Any]) -> tuple[str | None, str]:
    """The record's `usage` and `finish_reasons` JSON, kept when the content goes."""
    usage = completion.get("usage")
    reasons = [choice.get("finish_reason") for choice in completion.get("choices", ())]
    return (None if usage is None else dump_json(usage, "usage")), dump_json(reasons, "choices")


def stored_object(completion: str, metadata: str) -> dict[str, Any]:
    """The stored object as served: the completion with its current metadata map."""
    return StoredText(completion, metadata).decode()


_PLACEHOLDER = re.compile(r"\$(\d+)")


def for_sqlite(sql: str) -> str:
    return _PLACEHOLDER.sub(r"?\1", sql)
