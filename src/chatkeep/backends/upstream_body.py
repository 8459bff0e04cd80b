"""Reading an upstream's answer within its bounds: `read_timeout` and `max_response_bytes`.

The upstream's silences are timed here, by one `SilenceWatch` per upstream rather than by
aiohttp's `sock_read` timer or a timer per wait (why: below).
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
#
# Why not `asyncio.timeout` around each wait: on uvloop arming and cancelling a timer costs
# about 3-5 us, paid on every request (and on every wait of a stream), for a deadline that
# almost never fires. The watch keeps each wait's deadline in a set and checks them all on
# one coarse tick, so a wait costs a set insert and removal.

# A deadline fires at most this share of `read_timeout` late (and at most _MAX_TICK late).
_TICK_SHARE = 0.125
_MIN_TICK = 0.005
_MAX_TICK = 1.0


class UpstreamSilent(TimeoutError):
    """The upstream sent nothing for `read_timeout` seconds."""


class AnswerTooLarge(Exception):
    """The upstream's answer passed `max_response_bytes`."""


class _Wait:
    __slots__ = ("deadline", "fired", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.fired = False


class SilenceWatch:
    """The deadlines of one upstream's waits, `seconds` each, checked on one coarse tick.

    A wait that outlives its deadline is cancelled and raises `UpstreamSilent`, as
    `asyncio.timeout` would make it raise `TimeoutError`: a cancellation from elsewhere
    stays a cancellation. A deadline fires up to one tick (an eighth of `seconds`, between
    5 ms and 1 s) late. The tick runs only while some wait is in flight.
    """

    __slots__ = ("_handle", "_seconds", "_tick", "_waits")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._tick = min(max(seconds * _TICK_SHARE, _MIN_TICK), _MAX_TICK)
        self._waits: set[_Wait] = set()
        self._handle: asyncio.TimerHandle | None = None

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """What `awaitable` gives, or `UpstreamSilent` when that takes more than `seconds`."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None  # always inside a task
        cancelling = task.cancelling()
        wait = _Wait(task, loop.time() + self._seconds)
        self._waits.add(wait)
        if self._handle is None:
            self._handle = loop.call_later(self._tick, self._check, loop)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if wait.fired and task.uncancel() <= cancelling:
                raise UpstreamSilent from None
            raise
        finally:
            self._waits.discard(wait)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for wait in self._waits:
            if wait.deadline <= now and not wait.fired:
                wait.fired = True
                wait.task.cancel()
        self._handle = loop.call_later(self._tick, self._check, loop) if self._waits else None


class AnswerBody:
    """The body of one upstream answer, read piece by piece within its bounds.

    Bytes are counted as they are read (de-chunked and decompressed), so no more than the
    limit plus one read is ever held, whatever the body is: a completion, a stream of
    events, or a single line that never ends.
    """

    __slots__ = ("_content", "_left", "_watch")

    def __init__(
        self, response: aiohttp.ClientResponse, *, watch: SilenceWatch, limit: int
    ) -> None:
        length = response.content_length
        if length is not None and length > limit:
            raise AnswerTooLarge  # announced: refused before any of it is read
        self._content = response.content
        self._watch = watch
        self._left = limit

    def read_now(self) -> bytes:
        """What has arrived of the body and was not read yet; `b""` when nothing has."""
        data = self._content.read_nowait()
        self._left -= len(data)
        if self._left < 0:
            raise AnswerTooLarge
        return data

    def at_eof(self) -> bool:
        """Whether the whole body has arrived and been read."""
        return self._content.at_eof()

    async def read(self) -> bytes:
        """The next piece of the body, `b""` at its end."""
        # What has arrived already is taken without a deadline.
        data = self.read_now()
        if not data and not self._content.is_eof():
            data = await self._watch.wait(self._content.readany())
            self._left -= len(data)
            if self._left < 0:
                raise AnswerTooLarge
        return data

    async def read_all(self) -> bytes:
        pieces: list[bytes] = []
        while data := await self.read():
            pieces.append(data)
        return b"".join(pieces)
