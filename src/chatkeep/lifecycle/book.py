"""Where a server finds each project's policy: the config file's `[projects.NAME]` tables,
then the database's `projects` table, then the defaults.

A project the config file names takes its whole policy from the file (a team that deploys
declaratively keeps the file as the truth; `chatkeep projects set` refuses such a project).
The database's settings are read again once they are older than the auth cache time, so a
`chatkeep projects set` reaches every running server within that time. When the database
cannot be read, the last policies read stay in force (a create never fails over a policy).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from chatkeep.errors import StoreUnavailableError
from chatkeep.lifecycle.policy import DEFAULT_POLICY, PolicyError, ProjectPolicy
from chatkeep.store.projects import ProjectSettingsStore

logger = logging.getLogger(__name__)


class PolicyBook:
    """The policies in force, read from the file once and from the database at most once
    per `ttl` seconds (all projects in one read; the table holds a row per project)."""

    def __init__(
        self,
        source: ProjectSettingsStore,
        declared: Mapping[str, ProjectPolicy],
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._declared = dict(declared)
        self._ttl = ttl
        self._clock = clock
        self._stored: dict[str, ProjectPolicy] = {}
        self._expires = float("-inf")
        self._loaded = False
        self._refreshing: asyncio.Future[None] | None = None

    @property
    def declared(self) -> Mapping[str, ProjectPolicy]:
        return self._declared

    async def load(self) -> None:
        """The first read, at start-up: a database that cannot be read stops the start."""
        await self._refresh(force=True)

    async def policy_for(self, project: str) -> ProjectPolicy:
        if self._clock() >= self._expires:
            await self._refresh()
        found = self._declared.get(project) or self._stored.get(project)
        return DEFAULT_POLICY if found is None else found

    async def snapshot(self) -> Callable[[str], ProjectPolicy]:
        """Fresh policies of every project (for a purge): the lookup of one name."""
        await self._refresh(force=True)
        declared, stored = dict(self._declared), dict(self._stored)
        return lambda name: declared.get(name) or stored.get(name) or DEFAULT_POLICY

    async def _refresh(self, *, force: bool = False) -> None:
        # One read at a time: callers arriving meanwhile wait for it, not for one each.
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
            if not force:
                return
        future = self._refreshing = asyncio.get_running_loop().create_future()
        try:
            self._stored = await self._read()
            self._loaded = True
        except StoreUnavailableError:
            if force or not self._loaded:
                raise
            logger.warning("project policies could not be read; the last ones read stay")
        finally:
            self._expires = self._clock() + self._ttl
            self._refreshing = None
            future.set_result(None)

    async def _read(self) -> dict[str, ProjectPolicy]:
        policies = {}
        for name, settings in (await self._source.all_settings()).items():
            try:
                policies[name] = ProjectPolicy.parse(settings)
            except PolicyError as exc:
                # Written by a newer chatkeep, or by hand: keep serving, with the defaults.
                logger.warning("project %s: its stored policy is not valid (%s)", name, exc)
        return policies
