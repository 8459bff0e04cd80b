"""A lean HTTP/1.1 client for the hot path: `POST <base_url>/chat/completions`, pooled.

aiohttp's client was the largest single cost of a relayed request (about a quarter of the
server's CPU). This one does only what the relay needs: one `Connection` (an
`asyncio.Protocol` with httptools' parser) per pooled keep-alive connection, each request
written as one piece of bytes whose head, but for its length and the trace's headers, is
built once per upstream. The bytes on the wire are the ones aiohttp sent (the same headers
in the same order, `Accept-Encoding: gzip, deflate` included, and those codings decoded).

`LeanClient.for_upstream` says None for what it does not carry, and the backend keeps
aiohttp for those: a base_url with a user and password in it (aiohttp sends them as Basic
auth) or with characters that need quoting. It has no proxy support, and needs none:
chatkeep's aiohttp session never read the proxy variables (`trust_env` is off).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from collections.abc import Mapping
from urllib.parse import urlsplit

from chatkeep import __version__
from chatkeep.backends.http_conn import (
    Answer,
    Connection,
    UpstreamConnectTimeout,
    UpstreamDropped,
    UpstreamUnreachable,
)
from chatkeep.backends.upstream_config import UpstreamConfig

# How long a connection may wait idle in the pool (aiohttp's default keep-alive timeout).
KEEPALIVE_SECONDS = 15.0
# A path or host made only of these is sent as written; any other makes aiohttp's path.
_PLAIN = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def user_agent() -> str:
    return f"chatkeep/{__version__}"


def tls_context() -> ssl.SSLContext:
    """aiohttp's TLS defaults: the system's trusted certificates, names checked, HTTP/1.1."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


class LeanClient:
    """A pool of at most `max_connections` keep-alive connections to one upstream, for its
    chat route. Requests beyond the limit wait for a connection to be done.

    `headers` are sent with every request (after `Host`, in their order); a request's own
    (the trace's) follow them. `max_response_bytes` bounds what a compressed body is
    inflated to (`AnswerBody` counts the bytes and refuses what is over).
    """

    def __init__(
        self,
        host: str,
        port: int,
        target: str,
        headers: Mapping[str, str],
        *,
        max_connections: int,
        connect_timeout: float,
        max_response_bytes: int,
        tls: ssl.SSLContext | None = None,
        host_header: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        self._server_hostname = host.rstrip(".") if tls is not None else None
        self._limit = max_connections
        self._connect_timeout = connect_timeout
        self._max_bytes = max_response_bytes
        lines = [f"POST {target} HTTP/1.1", f"Host: {host_header or host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = _encode_lines(lines)
        self._tail = b"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nContent-Length: "
        self._idle: list[Connection] = []
        self._open = 0  # connections open or being opened
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def for_upstream(
        cls, config: UpstreamConfig, headers: Mapping[str, str], *, path: str
    ) -> LeanClient | None:
        """The client for `<config.base_url><path>`, or None where aiohttp must serve."""
        parts = urlsplit(config.base_url + path)
        host = parts.hostname
        if (
            parts.username is not None
            or parts.password is not None
            or not host
            or not _PLAIN.match(parts.path)
            or not _PLAIN.match(host)
        ):
            return None
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            return None
        shown = f"[{host}]" if ":" in host else host
        if parts.port is not None and parts.port != _DEFAULT_PORTS[parts.scheme]:
            shown = f"{shown}:{port}"
        return cls(
            host,
            port,
            parts.path or "/",
            headers,
            max_connections=config.max_connections,
            connect_timeout=config.connect_timeout,
            max_response_bytes=config.max_response_bytes,
            tls=tls_context() if parts.scheme == "https" else None,
            host_header=shown,
        )

    def request(self, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """The whole request for `body`, with `headers` (the trace's) besides the fixed ones."""
        head = self._head
        if headers:
            head += _encode_lines([f"{name}: {value}" for name, value in headers.items()])
        return b"%b%b%d\r\n\r\n%b" % (head, self._tail, len(body), body)

    async def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> Answer:
        """Send `body`; the answer, once its head has come. Release or close it when done."""
        data = self.request(body, headers)
        conn = await self._connection()
        answer = conn.send(data, self._max_bytes)
        try:
            await answer.head
        except BaseException:
            answer.close()
            raise
        return answer

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # --- the pool -------------------------------------------------------------------------

    async def _connection(self) -> Connection:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a pool of a loop that ended holds nothing usable
            self._loop, self._idle, self._open = loop, [], 0
            self._waiting.clear()
        idle = self._idle
        while True:
            while idle:
                conn = idle.pop()
                if conn.usable() and loop.time() - conn.idle_since < KEEPALIVE_SECONDS:
                    return conn
                conn.close()
            if self._open < self._limit:
                return await self._connect(loop)
            waiter = loop.create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.cancelled():  # woken and cancelled at once: wake another
                    self._wake()
                raise
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> Connection:
        self._open += 1
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(loop, self._done, self._lost),
                    self._host,
                    self._port,
                    ssl=self._tls,
                    server_hostname=self._server_hostname,
                )
        except TimeoutError as exc:
            self._gone()
            error = f"no connection to {self._host}:{self._port} within {self._connect_timeout:g} s"
            raise UpstreamConnectTimeout(error) from exc
        except OSError as exc:
            self._gone()
            raise UpstreamUnreachable(
                f"cannot connect to {self._host}:{self._port}: {exc}"
            ) from exc
        except BaseException:
            self._gone()
            raise
        return conn

    def _done(self, conn: Connection, reusable: bool) -> None:
        """`conn`'s answer is done: back to the pool, or (closed already) counted out."""
        if reusable and conn.usable() and conn.loop is self._loop:
            conn.idle_since = conn.loop.time()
            conn.answer = None
            self._idle.append(conn)
            self._wake()

    def _lost(self, conn: Connection) -> None:
        if conn.loop is not self._loop:
            return
        if conn in self._idle:
            self._idle.remove(conn)
        self._gone()

    def _gone(self) -> None:
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _encode_lines(lines: list[str]) -> bytes:
    if any("\r" in line or "\n" in line for line in lines):
        raise ValueError("a header with a line break in it")  # as aiohttp refuses them
    return "".join(f"{line}\r\n" for line in lines).encode("latin-1")


__all__ = ["KEEPALIVE_SECONDS", "LeanClient", "UpstreamDropped", "user_agent"]
