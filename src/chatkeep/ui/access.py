"""Who is looking at the UI: the project a browser's session names, decided exactly as the
API decides it for a key (the same `Authenticator`, its cache and its revocation).

A session that signed in holds its key's hash and sees that key's project while the key is
active. Without one, the UI is open only where the API is open (a loopback server whose
database holds no key): then everyone shares the default project, as API callers do.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatkeep.errors import AuthenticationError
from chatkeep.service.access import Authenticator
from chatkeep.service.keys import hash_key, looks_like_key
from chatkeep.ui.session import Session


@dataclass(frozen=True, slots=True)
class Viewer:
    project: str
    # False: an open server's default project, reached without a key.
    signed_in: bool


async def viewer_for(authenticator: Authenticator, session: Session) -> Viewer:
    """The session's viewer, or raise `AuthenticationError` (sign in, or signed-in key
    revoked: the caller tells the two apart by `session.key_hash`)."""
    if session.key_hash is not None:
        project = await authenticator.project_for_key_hash(session.key_hash)
        return Viewer(project, signed_in=True)
    return Viewer(await authenticator.project_for({}), signed_in=False)


async def key_hash_for_sign_in(authenticator: Authenticator, key: str) -> str | None:
    """The hash to keep in the session when `key` is an active API key, else None."""
    if not looks_like_key(key):
        return None
    key_hash = hash_key(key)
    try:
        await authenticator.project_for_key_hash(key_hash)
    except AuthenticationError:  # unknown or revoked (a store that is down still raises)
        return None
    return key_hash
