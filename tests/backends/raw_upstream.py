"""A raw HTTP/1.1 upstream on a loopback socket: each answer is bytes written as the test
says (in pieces, cut short, closed, with or without keep-alive), for the lean client's tests.

Every connection is numbered; each request is recorded with the number of the connection
it came on and its raw bytes. `answer(request_number, head_and_body)` returns the script:
a list of steps, each bytes to write, a float to sleep, or `CLOSE` / `RESET`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

CLOSE = "close"
RESET = "reset"
Step = bytes | float | str
Script = Callable[[int, bytes], list[Step]]


def plain(body: bytes = b'{"ok":true}', *, status: int = 200, extra: bytes = b"") -> bytes:
    """A whole answer with a Content-Length."""
    return b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%bContent-Length: %d\r\n\r\n%b" % (
        status,
        extra,
        len(body),
        body,
    )


def chunked(*pieces: bytes, extra: bytes = b"") -> list[Step]:
    """An answer in chunked transfer coding, each piece a chunk written on its own."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n%b" % extra
    steps: list[Step] = [head + b"Transfer-Encoding: chunked\r\n\r\n"]
    steps += [b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces]
    steps.append(b"0\r\n\r\n")
    return steps


@dataclass
class RawUpstream:
    script: Script
    port: int = 0
    connections: int = 0
    # (connection number, raw request) of every request, in order.
    requests: list[tuple[int, bytes]] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                index = len(self.requests)
                self.requests.append((number, request))
                if await self._play(writer, self.script(index, request)):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            self.open_now -= 1
            with contextlib.suppress(Exception):
                writer.close()

    async def _play(self, writer: asyncio.StreamWriter, steps: list[Step]) -> bool:
        """Write the steps; whether the connection was closed."""
        for step in steps:
            if isinstance(step, float):
                await asyncio.sleep(step)
            elif step == CLOSE:
                writer.close()
                return True
            elif step == RESET:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return True
            else:
                assert isinstance(step, bytes)
                writer.write(step)
                await writer.drain()
        return False


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


@asynccontextmanager
async def raw_upstream(
    script: Script, *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream(script)
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0, ssl=tls)
    upstream.port = server.sockets[0].getsockname()[1]
    try:
        yield upstream
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)
