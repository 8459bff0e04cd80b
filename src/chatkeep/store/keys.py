"""The KeyStore seam: API keys, kept in the same database as the completions they guard.

A key is stored only as the SHA-256 of its secret, a short display prefix and its project;
the secret itself never reaches the database. Revoked keys stay (with their revocation
time) so that `chatkeep keys list` keeps showing them. The SQL here is written once in
PostgreSQL's `$n` form; the SQLite key store converts it with `for_sqlite`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chatkeep.errors import ChatkeepError


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What may be shown of a key: never its secret, never its hash."""

    id: str
    project: str
    label: str | None
    # The first characters of the secret, to tell keys apart in listings.
    prefix: str
    # Unix seconds; `last_used` is recorded at most about once a minute per server.
    created: int
    last_used: int | None
    revoked: int | None
    # An admin key reads every project's usage and costs, and nothing else (`project` is
    # then `ALL_PROJECTS`).
    admin: bool = False

    @property
    def active(self) -> bool:
        return self.revoked is None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key to store: its hash (hex SHA-256 of the whole secret), never the secret."""

    id: str
    project: str
    label: str | None
    prefix: str
    key_hash: str
    created: int
    admin: bool = False


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key found by its hash, with the stored hash for the final constant-time compare."""

    key: ApiKey
    key_hash: str


class KeyExistsError(ChatkeepError):
    """A key with this id or hash is stored already (both are random: a server fault)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"An API key with id '{key_id}' or the same secret is already stored.")


class KeyStore(Protocol):
    """API keys. Implementations share the connections of the completion store they sit
    beside (SQLite: its reader threads and single writer; PostgreSQL: its pool)."""

    async def insert_key(self, key: NewApiKey) -> None:
        """Store a new key; durable on return. `KeyExistsError` on a duplicate."""
        ...

    async def find_key(self, key_hash: str) -> StoredKey | None:
        """The key whose secret hashes to `key_hash` (revoked or not), or None."""
        ...

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        ...

    async def revoke_key(self, key_id: str, revoked: int) -> ApiKey | None:
        """Mark a key revoked at `revoked` (kept if it already was); None if no such key."""
        ...

    async def record_use(self, last_used: Mapping[str, int]) -> None:
        """Set `last_used` (key id -> Unix seconds) where it moves forward, in one write."""
        ...

    async def has_keys(self) -> bool:
        """Whether the database holds any key at all, revoked ones included."""
        ...


# The project an admin key names: no project name can be it (names start with a letter or
# digit), and it reads as "every project" in a listing or a database dump.
ALL_PROJECTS = "*"
_COLUMNS = "id, project, label, prefix, created, last_used, revoked, admin"
# Where `key_hash` is in a `FIND_KEY_SQL` row: after the `_COLUMNS`.
HASH_COLUMN = 8
INSERT_KEY_SQL = (
    "INSERT INTO api_keys (id, project, label, prefix, key_hash, created, admin) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
FIND_KEY_SQL = f"SELECT {_COLUMNS}, key_hash FROM api_keys WHERE key_hash = $1"
LIST_KEYS_SQL = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created, id"
REVOKE_KEY_SQL = (
    f"UPDATE api_keys SET revoked = COALESCE(revoked, $2) WHERE id = $1 RETURNING {_COLUMNS}"
)
# Several servers may record uses of the same key: the latest time wins, never an older one.
RECORD_USE_SQL = (
    "UPDATE api_keys SET last_used = $2 WHERE id = $1 AND (last_used IS NULL OR last_used < $2)"
)
HAS_KEYS_SQL = "SELECT EXISTS (SELECT 1 FROM api_keys)"


def key_from_row(row: Any) -> ApiKey:
    """An `ApiKey` from a row whose first columns are `_COLUMNS`, in that order."""
    return ApiKey(
        id=row[0],
        project=row[1],
        label=row[2],
        prefix=row[3],
        created=int(row[4]),
        last_used=None if row[5] is None else int(row[5]),
        revoked=None if row[6] is None else int(row[6]),
        admin=bool(row[7]),
    )


def new_key_row(key: NewApiKey) -> tuple[Any, ...]:
    """The parameters of `INSERT_KEY_SQL` for `key`."""
    return (key.id, key.project, key.label, key.prefix, key.key_hash, key.created, key.admin)
