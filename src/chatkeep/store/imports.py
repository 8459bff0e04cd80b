"""What an import keeps in the store beside the completions (`chatkeep.importer`): the
original ids of imported completions, and how far each import got.

A completion imported from OpenAI keeps its original id, which is random, while the store
orders, partitions and purges by ids that begin with their creation time. So it is stored
under an id minted at its original `created` time, its stored object keeps the original
`id`, and `completion_aliases` maps the one to the other; the API looks an id up there when
it finds no completion under it (`service.reads`), and a list cursor always (a cursor is
any id, found or not). Completions imported from a chatkeep keep their ids as they are.
On SQLite an alias goes with its completion's record (a foreign key); on PostgreSQL the
store deletes it with the record. `import_checkpoints` holds the last source id each
import finished, so that a second run goes on from there.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

SQLITE_MIGRATION = (
    """CREATE TABLE completion_aliases (
        project TEXT NOT NULL,
        alias TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (project, alias),
        FOREIGN KEY (project, id) REFERENCES completions (project, id) ON DELETE CASCADE
    )""",
    "CREATE INDEX completion_aliases_id ON completion_aliases (project, id)",
    """CREATE TABLE import_checkpoints (
        source TEXT NOT NULL,
        project TEXT NOT NULL,
        after TEXT NOT NULL,
        updated INTEGER NOT NULL,
        PRIMARY KEY (source, project)
    )""",
)
POSTGRES_MIGRATION = (
    """CREATE TABLE completion_aliases (
        project text COLLATE "C" NOT NULL,
        alias text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        PRIMARY KEY (project, alias)
    )""",
    "CREATE INDEX completion_aliases_id ON completion_aliases (project, id)",
    """CREATE TABLE import_checkpoints (
        source text NOT NULL,
        project text NOT NULL,
        after text NOT NULL,
        updated bigint NOT NULL,
        PRIMARY KEY (source, project)
    )""",
)

ALIAS_SQL = "SELECT id FROM completion_aliases WHERE project = $1 AND alias = $2"
ANY_ALIAS_SQL = "SELECT EXISTS (SELECT 1 FROM completion_aliases)"


class AliasPresence:
    """Whether the database holds any alias, as last read (at most `max_age` ago), so that
    a list page's cursor is looked up among them only when there can be one: most stores
    never import, and on PostgreSQL the lookup is a round trip on every paged list. A store
    that writes an alias knows at once; another server's first alias can go unseen for up
    to `max_age`, a window in which no client can have read that original id yet from this
    server's lists. One per store."""

    def __init__(self, *, max_age: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self._max_age = max_age
        self._clock = clock
        self._exist = True
        self._read_at = float("-inf")

    def added(self) -> None:
        self._exist = True

    async def exist(self, read: Callable[[], Awaitable[bool]]) -> bool:
        if self._clock() - self._read_at > self._max_age:
            self._exist = bool(await read())
            self._read_at = self._clock()
        return self._exist


INSERT_ALIAS_SQL = "INSERT INTO completion_aliases (project, alias, id) VALUES ($1, $2, $3)"
DELETE_ALIAS_SQL = "DELETE FROM completion_aliases WHERE project = $1 AND id = $2"
# Records purged below an id: their aliases go too (PostgreSQL; SQLite's foreign key).
PURGE_ALIASES_SQL = "DELETE FROM completion_aliases WHERE project = $1 AND id < $2"
CHECKPOINT_SQL = "SELECT after FROM import_checkpoints WHERE source = $1 AND project = $2"
SAVE_CHECKPOINT_SQL = (
    "INSERT INTO import_checkpoints (source, project, after, updated) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (source, project) DO UPDATE SET after = excluded.after, "
    "updated = excluded.updated"
)
