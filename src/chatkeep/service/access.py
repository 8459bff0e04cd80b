"""Who may call, and which project a call belongs to.

`KeyAccess` (`chatkeep.service.key_access`) is the one implementation: it requires API
keys, and runs open (every call in the default project) only while the database holds none
and the server may run open (a loopback address, or `--insecure-no-auth`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the project, the key's id (None on an open server, which takes calls
    without a key), and whether it is an admin key (usage and costs of every project)."""

    project: str
    key_id: str | None = None
    admin: bool = False


class Authenticator(Protocol):
    async def project_for(self, headers: Mapping[str, str]) -> str:
        """The project of the caller, or raise `AuthenticationError` (an admin key too)."""
        ...

    async def caller_for(self, headers: Mapping[str, str], *, admin_ok: bool = False) -> Caller:
        """The caller, or raise `AuthenticationError`; an admin key is refused unless
        `admin_ok` (the usage and costs routes)."""
        ...

    async def project_for_key_hash(self, key_hash: str) -> str:
        """The project of the active key whose SHA-256 this is (a web UI session), or raise
        `AuthenticationError`."""
        ...

    async def start(self) -> None:
        """Called once the store is open, before the first request."""
        ...

    async def aclose(self) -> None:
        """Called before the store closes: finish background work."""
        ...


def is_loopback_host(host: str) -> bool:
    """Whether a listen address is reachable only from this machine: 127.0.0.0/8, ::1,
    `localhost`. Other names are not resolved, so they count as reachable from outside."""
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
