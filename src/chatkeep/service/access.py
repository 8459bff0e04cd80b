"""Who may call, and which project a call belongs to.

`OpenAccess` is the posture of a server with no API keys: every call belongs to the one
default project. Key-based authentication implements the same `Authenticator` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from chatkeep.store.base import DEFAULT_PROJECT


class Authenticator(Protocol):
    async def project_for(self, headers: Mapping[str, str]) -> str:
        """The project of the caller, or raise `AuthenticationError`."""
        ...


class OpenAccess:
    """No keys configured: every caller is in the default project."""

    async def project_for(self, headers: Mapping[str, str]) -> str:
        return DEFAULT_PROJECT
