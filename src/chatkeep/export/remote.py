"""A running server as a `CompletionSource`: chatkeep, OpenAI, or anything else that speaks
the stored-completions API, walked through its public routes with an API key.

`GET /v1/chat/completions` pages (100 a page) give the completions; `GET .../{id}/messages`
pages give each one's messages, a few completions at a time. aiohttp is the HTTP client
chatkeep already depends on for its upstreams.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiohttp

from chatkeep.export.retry import Retry
from chatkeep.export.source import MESSAGES_PAGE, PAGE_SIZE, Conversation
from chatkeep.protocol.codec import load_json
from chatkeep.protocol.queries import ListQuery

# Requests in flight at once: a page's messages are fetched this many at a time.
_CONNECTIONS = 8
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)


class RemoteError(Exception):
    """The server could not be reached, or refused a request; the message says which."""


def api_base(url: str) -> str:
    """The `/v1` base of a server given as `http://host:port`, with or without `/v1`."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise RemoteError(f"The server URL must start with http:// or https://, not {url!r}.")
    return base if base.endswith("/v1") else f"{base}/v1"


class RemoteSource:
    """The stored completions that `api_key`'s project sees on the server at `base`."""

    def __init__(
        self, session: aiohttp.ClientSession, base: str, retry: Retry | None = None
    ) -> None:
        self._session = session
        self._base = base
        self._retry = retry

    @property
    def base(self) -> str:
        return self._base

    async def get_json(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any] | None:
        """The JSON body of a 200; None for a 404; RemoteError for anything else, after
        the retries of the source's `Retry` (none by default) for what may pass."""
        url = f"{self._base}{path}"
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._session.get(url, params=params) as response:
                    if response.status == 404:
                        return None
                    if response.status != 200:
                        refusal = _refusal(response.status, await response.text())
                        wait = self._retry.after(attempt, response) if self._retry else None
                        if wait is None:
                            raise RemoteError(refusal)
                        await asyncio.sleep(wait)
                        continue
                    raw = await response.read()
                    break
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                wait = self._retry.after(attempt, None) if self._retry else None
                if wait is None:
                    reason = " ".join(str(error).split()) or type(error).__name__
                    raise RemoteError(f"Cannot reach {self._base}: {reason}") from None
                await asyncio.sleep(wait)
        try:
            body: dict[str, Any] = load_json(raw)
        except ValueError:
            raise RemoteError(f"{url} answered 200 with a body that is not JSON.") from None
        return body

    async def walk(self, query: ListQuery) -> AsyncGenerator[Conversation, None]:
        after = query.after
        while True:
            params = [("limit", str(min(query.limit, PAGE_SIZE))), ("order", query.order)]
            if query.model is not None:
                params.append(("model", query.model))
            params += [(f"metadata[{key}]", value) for key, value in query.metadata.items()]
            if query.search is not None:  # chatkeep's extensions: a chatkeep source
                params.append(("search", query.search.text))
            if query.created_after is not None:
                params.append(("created_after", str(query.created_after)))
            if query.created_before is not None:
                params.append(("created_before", str(query.created_before)))
            if after is not None:
                params.append(("after", after))
            page = await self.get_json("/chat/completions", params)
            if page is None:
                raise RemoteError(f"{self._base}/chat/completions answered 404.")
            found = await asyncio.gather(*(self.with_messages(c) for c in page["data"]))
            for conversation in found:
                if conversation is not None:
                    yield conversation
            if not page.get("has_more") or not page["data"]:
                return
            after = page["data"][-1]["id"]

    async def conversation(self, completion_id: str) -> Conversation | None:
        stored = await self.get_json(f"/chat/completions/{quote(completion_id, safe='')}", [])
        return None if stored is None else await self.with_messages(stored)

    async def with_messages(self, completion: dict[str, Any]) -> Conversation | None:
        path = f"/chat/completions/{quote(completion['id'], safe='')}/messages"
        messages: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params = [("limit", str(MESSAGES_PAGE))] + ([("after", after)] if after else [])
            page = await self.get_json(path, params)
            if page is None:  # deleted since the list page was read
                return None
            messages += page["data"]
            if not page.get("has_more") or not page["data"]:
                return Conversation(completion, messages)
            after = page["data"][-1]["id"]


def _refusal(status: int, body: str) -> str:
    """The server's own error message, when its answer is OpenAI's envelope."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body[:200].strip() or "(no body)"
    if status == 401:
        return f"The server refused the API key (401): {message}"
    return f"The server answered {status}: {message}"


@asynccontextmanager
async def open_remote(
    url: str, api_key: str | None, retry: Retry | None = None
) -> AsyncIterator[RemoteSource]:
    """A `RemoteSource` on its own connection pool, closed on exit."""
    base = api_base(url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    connector = aiohttp.TCPConnector(limit=_CONNECTIONS)
    async with aiohttp.ClientSession(
        headers=headers, connector=connector, timeout=_TIMEOUT
    ) as session:
        yield RemoteSource(session, base, retry)
