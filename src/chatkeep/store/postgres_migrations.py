"""Schema migrations of the PostgreSQL store: which are applied, and applying the rest.

What a migration does is in `schema` (the same list for both stores); here is how PostgreSQL
runs it: one transaction for all that are due (its DDL is transactional, so a failed
upgrade leaves the database as it was), under an advisory lock so that servers starting
together migrate once, and a `PartitionWeeks` step made by `postgres_partitions`.
"""

from __future__ import annotations

from chatkeep.store import postgres_partitions as partitions
from chatkeep.store.postgres_faults import Connection
from chatkeep.store.schema import MIGRATIONS_TABLE, MigrationPlan, PartitionWeeks

# Serializes migrations of one database across chatkeep processes starting together.
_MIGRATION_LOCK = 0x63686B70  # "chkp"


async def applied(conn: Connection) -> list[str]:
    """The names of the migrations this database has had, none before the first."""
    if await conn.fetchval("SELECT to_regclass('chatkeep_migrations')") is None:
        return []
    return [row[0] for row in await conn.fetch("SELECT name FROM chatkeep_migrations")]


async def migrate(conn: Connection, plan: MigrationPlan) -> list[str]:
    """Apply what `plan` picks in one transaction (PostgreSQL DDL is transactional)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(MIGRATIONS_TABLE["postgres"])
        todo = plan(await applied(conn))
        for migration in todo:
            for statement in migration.statements("postgres"):
                if isinstance(statement, PartitionWeeks):
                    weeks = await partitions.project_weeks(conn, statement.source)
                    await partitions.ensure(conn, weeks)
                else:
                    await conn.execute(statement)
            await conn.execute("INSERT INTO chatkeep_migrations (name) VALUES ($1)", migration.name)
    return [m.name for m in todo]
