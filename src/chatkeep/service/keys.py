"""API keys: minting, hashing and masking them, and creating, listing and revoking them.

A key is `sk-ck-` plus 40 random base62 characters (about 238 bits) from `secrets`. Only
its SHA-256 is stored: the key is random and long, so nothing is gained from a slow
password hash (there is no dictionary to try), and every request can afford to hash it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from chatkeep.ids import BASE62
from chatkeep.project_names import check_project
from chatkeep.store.keys import ALL_PROJECTS, ApiKey, KeyStore, NewApiKey

KEY_PREFIX = "sk-ck-"
# An admin key's secret says what it is, as OpenAI's `sk-admin-` keys do.
ADMIN_KEY_PREFIX = KEY_PREFIX + "admin-"
KEY_RANDOM_LENGTH = 40
KEY_ID_PREFIX = "key_"
KEY_ID_RANDOM_LENGTH = 20
# What `chatkeep keys list` shows of a key: the fixed prefix and 4 random characters.
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 4
# A presented key this long or longer is echoed in errors as its first 6 and last 4
# characters; a shorter one is not echoed at all.
MASK_MIN_LENGTH = 32
MAX_LABEL_LENGTH = 200
KEY_ID_SHAPE = re.compile(rf"{KEY_ID_PREFIX}[A-Za-z0-9]{{{KEY_ID_RANDOM_LENGTH}}}")


class KeyInputError(ValueError):
    """A key label that cannot be used (the CLI shows the message). A bad project name is a
    `ProjectNameError` (chatkeep/project_names.py), the rule every project name follows."""


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: what may be shown of it, and its secret, shown to the caller once."""

    key: ApiKey
    secret: str


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_secret() -> str:
    return KEY_PREFIX + _random_base62(KEY_RANDOM_LENGTH)


def hash_key(secret: str) -> str:
    """The hex SHA-256 of a presented key: what the database holds and is searched by."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_key(token: str) -> bool:
    """Whether a presented token has the shape of a chatkeep key (cheap, no lookup)."""
    return token.startswith(KEY_PREFIX)


def mask_key(token: str) -> str:
    """A presented key as error messages may show it: never whole."""
    if len(token) < MASK_MIN_LENGTH:
        return "***"
    return f"{token[:6]}...{token[-4:]}"


def check_label(label: str | None) -> str | None:
    if label is None:
        return None
    if len(label) > MAX_LABEL_LENGTH or not label.isprintable():
        raise KeyInputError(
            f"Invalid key name: at most {MAX_LABEL_LENGTH} printable characters, on one line."
        )
    return label or None


async def create_api_key(keys: KeyStore, project: str, label: str | None = None) -> CreatedKey:
    """Mint and store a key for `project` (which exists from now on, if it did not)."""
    return await _store_new_key(keys, new_secret(), check_project(project), label, admin=False)


async def create_admin_api_key(keys: KeyStore, label: str | None = None) -> CreatedKey:
    """Mint and store an admin key: it reads every project's usage and costs, as OpenAI's
    admin keys do, and is refused by every other route (it belongs to no project)."""
    secret = ADMIN_KEY_PREFIX + _random_base62(KEY_RANDOM_LENGTH)
    return await _store_new_key(keys, secret, ALL_PROJECTS, label, admin=True)


async def _store_new_key(
    keys: KeyStore, secret: str, project: str, label: str | None, *, admin: bool
) -> CreatedKey:
    shown_length = len(ADMIN_KEY_PREFIX) + 4 if admin else DISPLAY_PREFIX_LENGTH
    new = NewApiKey(
        id=KEY_ID_PREFIX + _random_base62(KEY_ID_RANDOM_LENGTH),
        project=project,
        label=check_label(label),
        prefix=secret[:shown_length],
        key_hash=hash_key(secret),
        created=int(time.time()),
        admin=admin,
    )
    await keys.insert_key(new)
    shown = ApiKey(new.id, new.project, new.label, new.prefix, new.created, None, None, admin)
    return CreatedKey(key=shown, secret=secret)


async def list_api_keys(keys: KeyStore, project: str | None = None) -> list[ApiKey]:
    """Every key (of `project`, when given), revoked ones included, oldest first."""
    found = await keys.list_keys()
    return found if project is None else [key for key in found if key.project == project]


async def revoke_api_key(keys: KeyStore, key_id: str) -> ApiKey | None:
    """Revoke a key now (a revoked key keeps its first revocation time); None if unknown."""
    return await keys.revoke_key(key_id, int(time.time()))
