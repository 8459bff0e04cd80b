"""The schema of the stored Responses API (`store.responses`): migration 0007's statements.

The Responses API (docs/responses.md): one row per stored response, its record (model,
created, the previous response's id, metadata, usage) and its content (the Response
object and the input items of its own call; NULL once retention drops it, or when the
project keeps records only). A conversation is stored by reference: each row names the
response before it. Response ids begin with their minting time, so retention walks the
primary key as it does for completions; on PostgreSQL the table is partitioned by week
on the id as the completion tables are (`postgres_response_weeks`), its partitions made
on demand.
"""

from __future__ import annotations

SQLITE_MIGRATION = (
    """CREATE TABLE responses (
        project TEXT NOT NULL,
        id TEXT NOT NULL,
        model TEXT NOT NULL,
        created INTEGER NOT NULL,
        previous_response_id TEXT,
        metadata TEXT NOT NULL DEFAULT '{}',
        usage TEXT,
        response TEXT,
        input_items TEXT,
        PRIMARY KEY (project, id)
    )""",
)

POSTGRES_MIGRATION = (
    """CREATE TABLE responses (
        project text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        model text COLLATE "C" NOT NULL,
        created bigint NOT NULL,
        previous_response_id text COLLATE "C",
        metadata json NOT NULL DEFAULT '{}',
        usage json,
        response json,
        input_items json,
        PRIMARY KEY (project, id)
    ) PARTITION BY RANGE (id)""",
)
