"""Reading an upstream's answer within its bounds: `read_timeout` and `max_response_bytes`.

The upstream's silences are timed here, by one `SilenceWatch` per upstream rather than by
aiohttp's `sock_read` timer or a timer per wait (why: below).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from multidict import CIMultiDictProxy

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


class UpstreamOverdue(TimeoutError):
    """The exchange passed its `total_timeout`."""


class BodyStream(Protocol):
    """How an answer's body is read: aiohttp's `StreamReader`, or the lean client's answer."""

    def read_nowait(self) -> bytes: ...
    def is_eof(self) -> bool: ...
    def at_eof(self) -> bool: ...
    async def readany(self) -> bytes: ...


class UpstreamAnswer(Protocol):
    """An upstream's answer: aiohttp's `ClientResponse`, or the lean client's `Answer`."""

    @property
    def status(self) -> int: ...
    @property
    def content_type(self) -> str: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def headers(self) -> CIMultiDictProxy[str]: ...
    @property
    def content(self) -> BodyStream: ...
    def release(self) -> Any: ...
    def close(self) -> None: ...


class AnswerTooLarge(Exception):
    """The upstream's answer passed `max_response_bytes`."""


class Deadline:
    """One wait's deadline in a `SilenceWatch`: a context manager around the wait.

    A plain (not async) context manager, so that it adds no coroutine to the awaiting
    chain, which every resumption of the wait would pass through.
    """

    __slots__ = ("_cancelling", "_watch", "deadline", "end", "fired", "overdue", "task")

    def __init__(self, watch: SilenceWatch, end: float | None) -> None:
        self._watch = watch
        self.end = end
        self.overdue = False

    def __enter__(self) -> Deadline:
        task = asyncio.current_task()
        assert task is not None  # always inside a task
        self.task = task
        self._cancelling = task.cancelling()
        self.fired = False
        self.deadline = self._watch.add(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        self._watch.discard(self)
        if self.fired:
            left = self.task.uncancel()  # the cancel was ours: take it back in any case
            ours = kind is not None and issubclass(kind, asyncio.CancelledError)
            if ours and left <= self._cancelling:  # and no one else's is pending
                raise (UpstreamOverdue if self.overdue else UpstreamSilent) from None


class SilenceWatch:
    """The deadlines of one upstream's waits, `seconds` each, checked on one coarse tick.

    `with watch.deadline(): await ...`: a wait that outlives its deadline is cancelled and
    raises `UpstreamSilent`, as `asyncio.timeout` would make it raise `TimeoutError`; a
    cancellation from elsewhere stays a cancellation. A deadline fires up to one tick (an
    eighth of `seconds`, between 5 ms and 1 s) late. The tick runs only while some wait is
    in flight.
    """

    __slots__ = ("_handle", "_loop", "_seconds", "_tick", "_waits")

    def __init__(self, seconds: float, total: float | None = None) -> None:
        self._seconds = seconds
        shortest = seconds if total is None else min(seconds, total)
        self._tick = min(max(shortest * _TICK_SHARE, _MIN_TICK), _MAX_TICK)
        self._waits: set[Deadline] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def deadline(self, end: float | None = None) -> Deadline:
        """`with watch.deadline(): await ...`: the wait inside, timed; with `end` (a time of
        the loop's clock), cut there too, as `UpstreamOverdue`."""
        return Deadline(self, end)

    def add(self, wait: Deadline) -> float:
        """Start timing `wait`; its deadline."""
        loop = asyncio.get_running_loop()
        self._waits.add(wait)
        # A tick of another loop (one that ended with waits in flight) never comes back.
        if self._handle is None or self._loop is not loop:
            self._waits = {w for w in self._waits if w.task.get_loop() is loop}
            self._loop = loop
            self._handle = loop.call_later(self._tick, self._check, loop)
        deadline = loop.time() + self._seconds
        end = wait.end
        wait.overdue = end is not None and end < deadline
        return end if end is not None and wait.overdue else deadline

    def discard(self, wait: Deadline) -> None:
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

    __slots__ = ("_content", "_end", "_left", "_watch")

    def __init__(
        self,
        response: UpstreamAnswer,
        *,
        watch: SilenceWatch,
        limit: int,
        end: float | None = None,
    ) -> None:
        length = response.content_length
        if length is not None and length > limit:
            raise AnswerTooLarge  # announced: refused before any of it is read
        self._content = response.content
        self._watch = watch
        self._left = limit
        self._end = end  # where the exchange's `total_timeout` ends, if it is kept here

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
        # What has arrived already is taken without a wait, but not past `total_timeout`:
        # an upstream that always has the next piece ready never waits to be cut.
        data = self.read_now()
        if data and self._end is not None and asyncio.get_running_loop().time() >= self._end:
            raise UpstreamOverdue
        if not data and not self._content.is_eof():
            with self._watch.deadline(self._end):
                data = await self._content.readany()
            self._left -= len(data)
            if self._left < 0:
                raise AnswerTooLarge
        return data

    async def read_all(self) -> bytes:
        if self._content.is_eof():  # all of it has arrived (most small answers): one piece
            return self.read_now()
        pieces: list[bytes] = []
        while data := await self.read():
            pieces.append(data)
        return b"".join(pieces)
