"""The schema of usage accounting (`store.usage`): migration 0006's statements.

OpenAI's usage and costs API (docs/observability.md, "Usage and costs"). `usage_minutes`
holds one row per (project, minute, model, API key) with the sums of that minute; servers
and worker processes each add their counts to it with upserts that add, so they never
overwrite one another. It has no link to the completion tables: retention of content and
records leaves it alone (it has its own, `CHATKEEP_USAGE_RETENTION_DAYS`). A call made
without a key (an open server) has the empty string as its key id. `api_keys.admin` marks
admin keys, which read every project's usage and costs and nothing else.
"""

from __future__ import annotations

SQLITE_MIGRATION = (
    """CREATE TABLE usage_minutes (
        project TEXT NOT NULL,
        minute INTEGER NOT NULL,
        model TEXT NOT NULL,
        api_key_id TEXT NOT NULL,
        requests INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        PRIMARY KEY (project, minute, model, api_key_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX usage_minutes_minute ON usage_minutes (minute)",
    "ALTER TABLE api_keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0",
)

POSTGRES_MIGRATION = (
    """CREATE TABLE usage_minutes (
        project text COLLATE "C" NOT NULL,
        minute bigint NOT NULL,
        model text COLLATE "C" NOT NULL,
        api_key_id text COLLATE "C" NOT NULL,
        requests bigint NOT NULL,
        input_tokens bigint NOT NULL,
        cached_tokens bigint NOT NULL,
        output_tokens bigint NOT NULL,
        PRIMARY KEY (project, minute, model, api_key_id)
    )""",
    "CREATE INDEX usage_minutes_minute ON usage_minutes (minute)",
    "ALTER TABLE api_keys ADD COLUMN admin boolean NOT NULL DEFAULT false",
)
