"""One system call per plain response: a response's head waits for its first body bytes.

uvicorn writes a response's status line and headers the moment the app sends
`http.response.start`, and its body on the next message: two `write` calls for every JSON
answer, and one more for each stream. The transport each request's cycle writes through is
this wrapper instead: it holds the head back and writes it together with the first body
bytes, which the app sends right after (the create route sends both in one step). A head
is never held longer than the event loop's next turn (a flush is scheduled when it is
held), so an app that sends a head and then waits still shows it to the client at once; a
HEAD request, whose body is never written, is not held at all.
"""

from __future__ import annotations

import asyncio
import contextlib


class HeldHeadTransport:
    """The part of `asyncio.Transport` uvicorn's response cycle uses (`write`, `close`,
    `is_closing`), holding the first write (the head) until the next."""

    __slots__ = ("_fresh", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._fresh = True
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif self._fresh:
            self._fresh = False
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            # The client may have gone since the head was held (uvloop refuses a write to
            # a closed transport): the answer is lost either way, as uvicorn's would be.
            if not self._transport.is_closing():
                with contextlib.suppress(RuntimeError):
                    self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()
