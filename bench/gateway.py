"""Part 1 and 3 of the suite: gateway overhead of each target, and memory over many requests.

For each target and each mode (non-streamed, streamed with 20 chunks): a check that the
answer is right, a warm-up, requests per second at 64 connections (wrk) with the server's
CPU time per request, then p50/p99 latency at a fixed moderate rate (the open-loop
generator). Memory: RSS after warm-up, half-way and after `memory_requests` requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import orjson

import loadgen
import pg
from processes import BenchError, Usage, Window, rss_bytes
from targets import Context, Running, Target, create_body
from wrk import WrkResult, run_wrk

T = TypeVar("T")
HOST = "127.0.0.1"
PATH = "/v1/chat/completions"
MODES = (("non-streamed", False), ("streamed", True))


@dataclass(frozen=True)
class Plan:
    """How long each step runs; the full run and the smoke run differ only here."""

    warmup_s: int
    window_s: int
    rate: float
    rate_s: float
    memory_requests: int
    memory_targets: tuple[str, ...]
    connections: int = 64
    memory_deadline_s: float = 120.0


@dataclass
class GatewayRow:
    """One target in one mode."""

    target: str
    label: str
    mode: str
    rps: float | None = None
    requests: int = 0
    failed: int = 0
    cpu_us_per_request: float | None = None
    db_cpu_us_per_request: float | None = None
    server_core_busy: float | None = None
    load_core_busy: float | None = None
    rate: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    rate_failed: int = 0
    rate_load_core_busy: float | None = None
    background_busy: float | None = None
    error: str | None = None


@dataclass
class MemoryRow:
    target: str
    label: str
    requests: int = 0
    rss_mib: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None


def _check(running: Running, target: Target, stream: bool) -> None:
    """One request, answered right; for a storing target, the completion can be read back."""
    port = running.server.port
    request = loadgen.post_request(HOST, port, PATH, create_body(store=target.store, stream=stream))
    status, body = loadgen.run(_bounded(loadgen.fetch(HOST, port, request)))
    if status != 200:
        raise BenchError(f"{target.label}: check answered {status}: {body[:300]!r}")
    if stream:
        if not body.endswith(b"data: [DONE]\n\n") or body.count(b"data: ") < 21:
            raise BenchError(f"{target.label}: the streamed check is not 20 chunks and [DONE]")
        first = orjson.loads(body[6 : body.index(b"\n")])
    else:
        first = orjson.loads(body)
        if not first.get("choices"):
            raise BenchError(f"{target.label}: the check's answer has no choices: {body[:300]!r}")
    if target.store:
        get = loadgen.get_request(HOST, port, f"{PATH}/{first['id']}")
        status, body = loadgen.run(_bounded(loadgen.fetch(HOST, port, get)))
        if status != 200:
            raise BenchError(f"{target.label}: the stored completion reads back {status}")


async def _bounded(coroutine: Coroutine[Any, Any, T], seconds: float = 30.0) -> T:
    async with asyncio.timeout(seconds):
        return await coroutine


def _database_pids(ctx: Context, running: Running) -> list[int]:
    """PostgreSQL backends of this run, pinned to the load core (not the server's)."""
    if running.database is None or ctx.postgres_admin is None:
        return []
    pids = pg.backend_pids(ctx.postgres_admin, running.database)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {ctx.load_core})
    return pids


def _per_request_us(usage: Usage, requests: int) -> float | None:
    return usage.cpu_s / requests * 1e6 if requests else None


def _warm_up(plan: Plan, running: Running, body: bytes) -> int:
    if not plan.warmup_s:
        return 0
    url = f"http://{HOST}:{running.server.port}{PATH}"
    return run_wrk(url, seconds=plan.warmup_s, connections=plan.connections, body=body).requests


def _throughput(ctx: Context, plan: Plan, running: Running, row: GatewayRow, body: bytes) -> int:
    """Requests per second at 64 connections, and CPU per request; returns requests sent."""
    url = f"http://{HOST}:{running.server.port}{PATH}"
    db_pids = _database_pids(ctx, running)
    server_window, db_window = running.server.window(), Window(db_pids)
    result: WrkResult = run_wrk(url, seconds=plan.window_s, connections=plan.connections, body=body)
    usage, db_usage = server_window.close(), db_window.close()
    row.rps, row.requests = result.rps, result.requests
    row.failed = result.errors + result.non_2xx
    row.cpu_us_per_request = _per_request_us(usage, result.requests)
    if db_pids:
        row.db_cpu_us_per_request = _per_request_us(db_usage, result.requests)
    row.server_core_busy = usage.busy.get(ctx.server_core)
    row.load_core_busy = usage.busy.get(ctx.load_core)
    if not result.ok:
        raise BenchError(
            f"{row.label} {row.mode}: of {result.requests} requests {result.errors} got no "
            f"answer (socket errors, timeouts) and {result.non_2xx} answered other than 2xx"
        )
    return result.requests


def _latency(ctx: Context, plan: Plan, running: Running, row: GatewayRow, body: bytes) -> int:
    """p50/p99 at a fixed moderate rate; returns requests sent."""
    # A target slower than twice the rate (LiteLLM) is measured at half its own throughput.
    rate = min(plan.rate, max(1.0, math.floor((row.rps or 0) / 2)))
    port = running.server.port
    window = running.server.window()
    request = loadgen.post_request(HOST, port, PATH, body)
    result = loadgen.run(loadgen.run_rate(HOST, port, [request], rate=rate, seconds=plan.rate_s))
    usage = window.close()
    row.rate, row.p50_ms, row.p99_ms = rate, result.p50_ms, result.p99_ms
    row.rate_failed = result.errors + result.non_2xx
    row.rate_load_core_busy = usage.busy.get(ctx.load_core)
    if not result.ok:
        raise BenchError(f"{row.label} {row.mode}: {row.rate_failed} of {result.sent} failed")
    return result.sent


def _rss_mib(running: Running) -> float:
    return rss_bytes(running.server.pids()) / 2**20


def _top_up(plan: Plan, running: Running, memory: MemoryRow, body: bytes, rps: float) -> None:
    """Send non-streamed requests until `plan.memory_requests` have been sent in all."""
    url = f"http://{HOST}:{running.server.port}{PATH}"
    deadline = time.monotonic() + plan.memory_deadline_s
    while memory.requests < plan.memory_requests and time.monotonic() < deadline:
        left = plan.memory_requests - memory.requests
        seconds = min(30, max(1, math.ceil(left / max(rps, 1.0))))
        result = run_wrk(url, seconds=seconds, connections=plan.connections, body=body)
        memory.requests += result.requests
        if not result.ok:
            raise BenchError(f"{memory.label} memory run: requests failed")


def measure_target(
    ctx: Context, plan: Plan, target: Target
) -> tuple[list[GatewayRow], MemoryRow | None]:
    """Start the target, measure it in both modes (and its memory), stop it.

    Memory (for `plan.memory_targets`): RSS after the first warm-up, after the measured
    runs of both modes, and after non-streamed requests bring the count to
    `plan.memory_requests` (every request after that first warm-up counts).
    """
    rows = [GatewayRow(target.key, target.label, mode) for mode, _ in MODES]
    memory = MemoryRow(target.key, target.label) if target.key in plan.memory_targets else None
    running: Running | None = None
    current: GatewayRow | MemoryRow = rows[0]
    try:
        running = target.start(ctx)
        running.server.wait_ready(target.ready_timeout)
        for row, (_, stream) in zip(rows, MODES, strict=True):
            current = row
            _check(running, target, stream)
            body = create_body(store=target.store, stream=stream)
            sent = _warm_up(plan, running, body)
            if memory is not None:
                if not memory.rss_mib:
                    memory.rss_mib.append((0, _rss_mib(running)))
                else:
                    memory.requests += sent
            sent = _throughput(ctx, plan, running, row, body)
            sent += _latency(ctx, plan, running, row, body)
            if memory is not None:
                memory.requests += sent
        if memory is not None:
            current = memory
            memory.rss_mib.append((memory.requests, _rss_mib(running)))
            body = create_body(store=target.store, stream=False)
            _top_up(plan, running, memory, body, rows[0].rps or 1.0)
            memory.rss_mib.append((memory.requests, _rss_mib(running)))
    except Exception as exc:  # one target failing must not stop the others; reported below
        message = f"{type(exc).__name__}: {exc}"
        if running is not None and running.server.process.poll() is not None:
            message += f"\n{running.server.tail()}"
        current.error = message
        print(f"  FAILED {target.label}: {message}", flush=True)
    finally:
        if running is not None:
            running.stop()
    if memory is not None and not memory.rss_mib:
        memory = None
    return rows, memory


def as_dict(row: GatewayRow | MemoryRow) -> dict[str, Any]:
    return asdict(row)
