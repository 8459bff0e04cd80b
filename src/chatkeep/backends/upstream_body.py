"""Reading an upstream's answer within its bounds: `read_timeout` and `max_response_bytes`.

The upstream's silences are timed here, by a deadline around each wait, rather than by
aiohttp's `sock_read` timer (why: below).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import aiohttp

T = TypeVar("T")

# Why not aiohttp's `sock_read`: that timer belongs to the connection, not to the request,
# and aiohttp (3.14) can leave it armed on a connection back in the pool. A large answer
# that is read slower than it arrives makes aiohttp pause reading with the end of the body
# still unparsed; reading on parses that end, which stops the timer and releases the
# connection to the pool, and then `resume_reading()` starts the timer again (a path that
# the fix of aio-libs/aiohttp#12953 does not cover). It fires `read_timeout` seconds into
# the idle and marks the pooled connection failed, and the next request on it fails at once
# with a 504 "sent nothing", never having reached the upstream. A deadline here belongs to
# one wait of one request, and ends with it.


class UpstreamSilent(TimeoutError):
    """The upstream sent nothing for `read_timeout` seconds."""


class AnswerTooLarge(Exception):
    """The upstream's answer passed `max_response_bytes`."""


async def unless_silent(awaitable: Awaitable[T], seconds: float) -> T:
    """What `awaitable` gives, or `UpstreamSilent` when that takes more than `seconds`."""
    try:
        async with asyncio.timeout(seconds) as deadline:
            return await awaitable
    except TimeoutError:
        if deadline.expired():
            raise UpstreamSilent from None
        raise  # aiohttp's own: no connection in time, or the whole exchange took too long


class AnswerBody:
    """The body of one upstream answer, read piece by piece within its bounds.

    Bytes are counted as they are read (de-chunked and decompressed), so no more than the
    limit plus one read is ever held, whatever the body is: a completion, a stream of
    events, or a single line that never ends.
    """

    __slots__ = ("_content", "_left", "_read_timeout")

    def __init__(
        self, response: aiohttp.ClientResponse, *, read_timeout: float, limit: int
    ) -> None:
        length = response.content_length
        if length is not None and length > limit:
            raise AnswerTooLarge  # announced: refused before any of it is read
        self._content = response.content
        self._read_timeout = read_timeout
        self._left = limit

    async def read(self) -> bytes:
        """The next piece of the body, `b""` at its end."""
        content = self._content
        # What has arrived already is taken without a deadline (arming one costs ~5 us).
        data = content.read_nowait()
        if not data and not content.is_eof():
            data = await unless_silent(content.readany(), self._read_timeout)
        self._left -= len(data)
        if self._left < 0:
            raise AnswerTooLarge
        return data

    async def read_all(self) -> bytes:
        pieces: list[bytes] = []
        while data := await self.read():
            pieces.append(data)
        return b"".join(pieces)
