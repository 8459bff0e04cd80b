"""The ResponseStore seam: stored Responses API objects, beside the completions in the same
database and on the same connections (as the API keys and project settings are).

One row per response (`responses`, migration 0007): the record (id, model, created, the
previous response's id, metadata, usage) and the content (the Response object, the input
items of its own call), which retention drops before the record, as for completions. A
conversation is stored by reference: each response holds only its own inputs and outputs
and the id of the one before; `chain` walks the links back in one recursive query. Every
call is scoped to a project; another project's response answers as an unknown one.

The SQL is written once in PostgreSQL's `$n` form; the SQLite side converts it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chatkeep.ids import completion_id_ms
from chatkeep.response_ids import response_id_floor
from chatkeep.store.base import Cutoffs, PurgeCount

# The longest chain `previous_response_id` may continue (a guard, not a product limit).
MAX_CHAIN = 10_000
BATCH = 1000  # rows per retention write


@dataclass(frozen=True, slots=True)
class NewResponse:
    """A response to store: its record, and (unless `keep_content` is false) its content."""

    id: str
    project: str
    model: str
    created: int
    previous_response_id: str | None
    metadata: dict[str, str]
    usage: dict[str, Any] | None
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    keep_content: bool = True


@dataclass(frozen=True, slots=True)
class Turn:
    """One stored response of a chain: its own input items and its output items."""

    id: str
    input_items: list[dict[str, Any]]
    output: list[dict[str, Any]]


class ChainBroken(Exception):
    """A link of a chain is missing (deleted, purged, never stored, another project's)."""

    def __init__(self, response_id: str) -> None:
        super().__init__(response_id)
        self.response_id = response_id


class ResponseStore(Protocol):
    async def insert_response(self, response: NewResponse) -> None:
        """Store one response; durable on return."""
        ...

    async def get_response(self, project: str, response_id: str) -> dict[str, Any] | None:
        """The stored Response object, or None."""
        ...

    async def input_items(self, project: str, response_id: str) -> list[dict[str, Any]] | None:
        """The input items of a stored response's own call, in order, or None."""
        ...

    async def delete_response(self, project: str, response_id: str) -> bool:
        """Delete a response (record and content); False when there was none."""
        ...

    async def chain(self, project: str, response_id: str) -> list[Turn]:
        """The conversation that ends with `response_id`, oldest turn first; `ChainBroken`
        naming the first link that cannot be served."""
        ...

    async def purge_responses(
        self, cutoffs: Callable[[str], Cutoffs], *, project: str | None, dry_run: bool
    ) -> dict[str, PurgeCount]:
        """Retention of responses, by the same cutoffs as completions (in bounded batches)."""
        ...


INSERT_SQL = (
    "INSERT INTO responses (project, id, model, created, previous_response_id, metadata, "
    "usage, response, input_items) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
GET_SQL = "SELECT response FROM responses WHERE project = $1 AND id = $2 AND response IS NOT NULL"
ITEMS_SQL = (
    "SELECT input_items FROM responses WHERE project = $1 AND id = $2 AND response IS NOT NULL"
)
DELETE_SQL = (
    "DELETE FROM responses WHERE project = $1 AND id = $2 AND response IS NOT NULL RETURNING id"
)
# Oldest last: the walk starts at the newest response and follows `previous_response_id`.
CHAIN_SQL = f"""
WITH RECURSIVE chain(id, previous_response_id, response, input_items, depth) AS (
    SELECT id, previous_response_id, response, input_items, 0
    FROM responses WHERE project = $1 AND id = $2
    UNION ALL
    SELECT r.id, r.previous_response_id, r.response, r.input_items, c.depth + 1
    FROM chain AS c JOIN responses AS r ON r.project = $1 AND r.id = c.previous_response_id
    WHERE c.depth < {MAX_CHAIN}
)
SELECT id, previous_response_id, response, input_items FROM chain ORDER BY depth
"""
PROJECTS_SQL = "SELECT DISTINCT project FROM responses"
COUNT_CONTENT_SQL = (
    "SELECT count(*) FROM responses WHERE project = $1 AND id < $2 AND response IS NOT NULL"
)
COUNT_RECORDS_SQL = "SELECT count(*) FROM responses WHERE project = $1 AND id < $2"
DROP_CONTENT_SQL = f"""
UPDATE responses SET response = NULL, input_items = NULL
WHERE project = $1 AND id IN (
    SELECT id FROM responses WHERE project = $1 AND id < $2 AND response IS NOT NULL
    ORDER BY id LIMIT {BATCH}
)
"""
DROP_RECORDS_SQL = f"""
DELETE FROM responses WHERE project = $1 AND id IN (
    SELECT id FROM responses WHERE project = $1 AND id < $2 ORDER BY id LIMIT {BATCH}
)
"""


def turns(rows: list[Any], first: str, load: Callable[[Any], Any]) -> list[Turn]:
    """The chain's turns, oldest first, from the rows of `CHAIN_SQL` (newest first)."""
    found: list[Turn] = []
    wanted: str | None = first
    for row in rows:
        response_id, previous, response, items = row[0], row[1], row[2], row[3]
        if wanted is None or response_id != wanted or response is None:
            break
        found.append(Turn(response_id, load(items), load(response)["output"]))
        wanted = previous
    if wanted is not None:
        raise ChainBroken(wanted)
    return found[::-1]


def response_cutoffs(cutoffs: Cutoffs) -> tuple[str | None, str | None]:
    """The completion-id cutoffs of a policy as response-id cutoffs (same instants)."""
    return (
        _as_response_id(cutoffs.content_before),
        _as_response_id(cutoffs.records_before),
    )


def _as_response_id(completion_floor: str | None) -> str | None:
    if completion_floor is None:
        return None
    return response_id_floor(completion_id_ms(completion_floor))


# One statement of a purge on (project, cutoff): a count, or a batch that returns the rows
# it changed.
PurgeStep = Callable[[str, str, str], Awaitable[int]]


async def purge_projects(
    names: list[str],
    cutoffs: Callable[[str], Cutoffs],
    *,
    dry_run: bool,
    count: PurgeStep,
    batch: PurgeStep,
) -> dict[str, PurgeCount]:
    """Retention of each project's responses: records below the record cutoff go whole,
    then content below the content cutoff goes; each batch its own short write. A dry run
    counts instead."""
    found: dict[str, PurgeCount] = {}
    for name in names:
        content_before, records_before = response_cutoffs(cutoffs(name))
        tally = found[name] = PurgeCount()
        if records_before is not None:
            tally.records = await (count if dry_run else _repeat(batch))(
                COUNT_RECORDS_SQL if dry_run else DROP_RECORDS_SQL, name, records_before
            )
        if content_before is not None:
            tally.content = await (count if dry_run else _repeat(batch))(
                COUNT_CONTENT_SQL if dry_run else DROP_CONTENT_SQL, name, content_before
            )
    return found


def _repeat(batch: PurgeStep) -> PurgeStep:
    async def until_done(sql: str, project: str, cutoff: str) -> int:
        total = 0
        while (changed := await batch(sql, project, cutoff)) > 0:
            total += changed
        return total

    return until_done
