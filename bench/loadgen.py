"""Latency at a fixed request rate: an open-loop HTTP/1.1 load generator on uvloop.

Requests go out on a schedule (`rate` per second) whether or not earlier ones have been
answered, each on an idle keep-alive connection (a new one is opened when all are busy), so
a slow server cannot slow the generator and hide its own latency (coordinated omission).
Latency runs from the moment a request is written to the arrival of its last byte, parsed
by httptools (C). At the moderate rates used here it needs a few per cent of its core; the
suite reports that core's busy share next to every result to show it.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import httptools
import uvloop

T = TypeVar("T")
_INITIAL_CONNECTIONS = 16
_MAX_CONNECTIONS = 512
_DRAIN_SECONDS = 10.0


def post_request(host: str, port: int, path: str, body: bytes) -> bytes:
    """The bytes of one keep-alive POST of a JSON body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get_request(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, keep_body: bool = False) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[int] | None = None
        self._keep_body = keep_body
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_body(self, body: bytes) -> None:
        if self._keep_body:
            self.body += body

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self._parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self._transport is not None:
            self._transport.close()

    @property
    def usable(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def send(self, data: bytes) -> asyncio.Future[int]:
        """Write one request; the future resolves to the status once the answer is whole."""
        if self._transport is None:
            raise ConnectionResetError("the connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self.body.clear()
        self._transport.write(data)
        return self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def _connect(host: str, port: int, keep_body: bool = False) -> _Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: _Connection(keep_body), host, port)
    return protocol


@dataclass(frozen=True, slots=True)
class RateResult:
    """Latencies (ms) of one fixed-rate run, and how well the schedule was kept."""

    rate: float
    sent: int
    completed: int
    errors: int
    non_2xx: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    max_send_lag_ms: float
    connections: int

    @property
    def ok(self) -> bool:
        return self.completed > 0 and (self.errors + self.non_2xx) <= self.sent / 1000


def percentile(sorted_values: Sequence[float], share: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


class _RateRun:
    """The state of one open-loop run."""

    def __init__(self, host: str, port: int, requests: Sequence[bytes]) -> None:
        self.host, self.port, self.requests = host, port, requests
        self.idle: list[_Connection] = []
        self.opened = 0
        self.latencies: list[float] = []
        self.errors = 0
        self.non_2xx = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def connection(self) -> _Connection | None:
        while self.idle:
            connection = self.idle.pop()
            if connection.usable:
                return connection
        if self.opened >= _MAX_CONNECTIONS:
            return None
        self.opened += 1
        try:
            return await _connect(self.host, self.port)
        except OSError:
            return None

    async def one(self, connection: _Connection, data: bytes) -> None:
        started = time.perf_counter()
        try:
            status = await connection.send(data)
        except (OSError, httptools.HttpParserError):
            self.errors += 1
            connection.close()
            return
        self.latencies.append(time.perf_counter() - started)
        if not 200 <= status < 300:
            self.non_2xx += 1
        self.idle.append(connection)


async def run_rate(
    host: str, port: int, requests: Sequence[bytes], *, rate: float, seconds: float
) -> RateResult:
    """Send `rate` requests per second for `seconds`, each one of `requests` at random."""
    run = _RateRun(host, port, requests)
    for _ in range(_INITIAL_CONNECTIONS):
        run.idle.append(await _connect(host, port))
        run.opened += 1
    loop = asyncio.get_running_loop()
    total = max(1, int(rate * seconds))
    start = loop.time() + 0.01
    max_lag = 0.0
    for n in range(total):
        due = start + n / rate
        now = loop.time()
        if due > now:
            await asyncio.sleep(due - now)
        max_lag = max(max_lag, loop.time() - due)
        connection = await run.connection()
        if connection is None:
            run.errors += 1
            continue
        task = loop.create_task(run.one(connection, random.choice(requests)))
        run.tasks.add(task)
        task.add_done_callback(run.tasks.discard)
    if run.tasks:
        _, late = await asyncio.wait(set(run.tasks), timeout=_DRAIN_SECONDS)
        run.errors += len(late)
        for task in late:
            task.cancel()
    duration = loop.time() - start
    for connection in run.idle:
        connection.close()
    latencies = sorted(value * 1000 for value in run.latencies)
    return RateResult(
        rate=rate,
        sent=total,
        completed=len(latencies),
        errors=run.errors,
        non_2xx=run.non_2xx,
        duration_s=duration,
        p50_ms=percentile(latencies, 0.50),
        p90_ms=percentile(latencies, 0.90),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else math.nan,
        max_send_lag_ms=max_lag * 1000,
        connections=run.opened,
    )


async def fetch(host: str, port: int, data: bytes) -> tuple[int, bytes]:
    """Send one request on a fresh connection; its status and body (callers bound the wait)."""
    connection = await _connect(host, port, keep_body=True)
    try:
        status = await connection.send(data)
        return status, bytes(connection.body)
    finally:
        connection.close()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)
