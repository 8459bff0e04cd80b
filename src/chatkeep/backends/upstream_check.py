"""The check of an upstream: `GET <base_url>/models`, and what its failure likely means.

Every OpenAI-compatible server answers that route, so it tells a wrong `base_url` (404, most
often a missing `/v1`), a wrong key (401) or a server that is down before a client finds
out. The check is bounded by `UpstreamConfig.check_seconds` and only informs: it never
raises, and the key it sends (the session's header) is never part of what it reports.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from urllib.parse import urlsplit

import aiohttp

from chatkeep.backends.upstream_config import UpstreamConfig

logger = logging.getLogger(__name__)


class UpstreamCheck:
    """One upstream's check, run at start, and what it found, kept for the error path."""

    def __init__(self, name: str, config: UpstreamConfig) -> None:
        self.name = name
        self.config = config
        # What `GET <base_url>/models` answered; None until an answer came.
        self.models_status: int | None = None

    async def at_start(self, session: aiohttp.ClientSession) -> None:
        """Check the upstream; a warning saying what failed and the likely fix, if it did."""
        problem = await self._run(session)
        if problem is not None:
            shown = f"{self.config.shown_url}/models"
            logger.warning(
                "Upstream '%s' failed its start-up check: GET %s %s", self.name, shown, problem
            )

    async def wrong_url_hint(self, status: int, session: aiohttp.ClientSession) -> str | None:
        """For a 404 of the chat route, when `GET <base_url>/models` is a 404 too, what the
        client is told: the base_url is wrong (most often its `/v1` is missing), not the
        model unknown. Error path only; asks now if the start-up check got no answer.

        The message names the path, not the host: where an upstream lives is the operator's
        business.
        """
        if status != 404:
            return None
        if self.models_status is None:
            await self._run(session)
        if self.models_status != 404:
            return None
        base_path = urlsplit(self.config.base_url).path
        if base_path.endswith("/v1"):
            fix = f"check its base_url: GET {base_path}/models answers 404 too"
        else:
            fix = "check that its base_url ends with /v1"
        return f"Upstream '{self.name}' answered 404 for POST {base_path}/chat/completions: {fix}."

    async def _run(self, session: aiohttp.ClientSession) -> str | None:
        """Ask for the models; what went wrong, or None."""
        limit = self.config.check_seconds
        try:
            async with asyncio.timeout(limit):
                url = f"{self.config.base_url}/models"
                async with session.get(url, allow_redirects=False) as response:
                    self.models_status = response.status
        except TimeoutError:
            return f"got no answer within {limit:g} s"
        except aiohttp.ClientConnectorError as exc:
            return f"could not connect: {_unreachable(exc)}"
        except (aiohttp.ClientError, OSError) as exc:
            return f"failed: {type(exc).__name__}"
        return _status_problem(self.models_status, self.config)


def _status_problem(status: int, config: UpstreamConfig) -> str | None:
    if 200 <= status < 300:
        return None
    if status == 404:
        return "answered 404: does its base_url end with /v1?"
    if status in (401, 403):
        if config.api_key_env is None:
            return f"answered {status}: it wants an API key; name its variable in api_key_env"
        return (
            f"answered {status}: is api_key_env right? (the key is read from {config.api_key_env})"
        )
    return f"answered {status}"


def _unreachable(error: aiohttp.ClientConnectorError) -> str:
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate was not accepted"
    cause = error.os_error
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, socket.gaierror):
        return f"unknown host ({cause.strerror})"
    if cause.errno:
        return os.strerror(cause.errno).lower()
    return type(cause).__name__
