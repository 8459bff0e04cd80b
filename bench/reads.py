"""Part 2 of the suite: stored-completion reads with many completions stored, on both stores.

The store is filled by bench/fill_store.py (`--database-url URL --count N`), then served by
`chatkeep serve`; ids and metadata pairs to ask for are sampled from the filled database.
Each query runs at 64 connections (wrk, random paths) for requests per second, then at a
fixed moderate rate for p50/p99: get by id, list (a page after a random cursor), list with
a two-key metadata filter (its first page), list in descending order (after a random
cursor), and the messages list of a completion.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import subprocess
import time
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg  # type: ignore[import-untyped]
import orjson

import loadgen
import pg
from chatkeep.store.base import DEFAULT_PROJECT
from chatkeep.store.schema import MIGRATIONS
from chatkeep.store.sqlite_driver import sqlite3
from processes import BenchError, Server
from targets import BENCH, Context, start_chatkeep
from wrk import run_wrk

FILL_SCRIPT = BENCH / "fill_store.py"
READ_LATENCY_SCRIPT = BENCH / "read_latency.py"
CACHE = Path.home() / ".cache" / "chatkeep-bench"
HOST = "127.0.0.1"
PATH = "/v1/chat/completions"
QUERIES = ("get", "list", "list-filter", "list-desc", "messages")


@dataclass(frozen=True)
class ReadPlan:
    rows: int
    window_s: int
    rate: float
    rate_s: float
    warmup_s: int
    latency_requests: int
    cache: bool = False
    sample: int = 2000
    connections: int = 64
    # 1,000,000 completions: SQLite about 5 minutes here, PostgreSQL about 14 (each row's
    # `tsvector` and GIN entry, since search).
    fill_timeout_s: float = 1800.0


def _sample_sqlite(path: Path, size: int) -> list[str]:
    """Random ids of the default project, found by random rowids (no scan of the table)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (top,) = conn.execute("SELECT max(rowid) FROM completions").fetchone()
        found = []
        for rowid in random.sample(range(1, (top or 0) + 1), min(size, top or 0)):
            row = conn.execute(
                "SELECT id FROM completions WHERE rowid = ? AND project = ?",
                (rowid, DEFAULT_PROJECT),
            ).fetchone()
            if row is not None:
                found.append(row[0])
        return found
    finally:
        conn.close()


async def _sample_postgres(url: str, size: int, rows: int) -> list[str]:
    """Random ids of the default project, from a Bernoulli sample of the table."""
    share = min(100.0, 100.0 * 2 * size / max(rows, 1))
    conn = await asyncpg.connect(url, timeout=10)
    try:
        found = await conn.fetch(
            f"SELECT id FROM completions TABLESAMPLE BERNOULLI ({share:.6f}) WHERE project = $1",
            DEFAULT_PROJECT,
        )
    finally:
        await conn.close()
    return random.sample([row["id"] for row in found], min(size, len(found)))


def _paths(ids: list[str]) -> dict[str, list[str]]:
    from fill_store import TYPICAL_FILTERS  # bench/fill_store.py, which made the data

    if not ids:
        raise BenchError(f"the filled store has no completion in project {DEFAULT_PROJECT!r}")
    # fill_store's typical filters (env=prod and one of 8 teams: 1-10 % of rows each).
    filters = [
        "&".join(f"{quote(f'metadata[{key}]')}={quote(value)}" for key, value in pairs.items())
        for pairs in TYPICAL_FILTERS
    ]
    return {
        "get": [f"{PATH}/{i}" for i in ids],
        "list": [f"{PATH}?limit=20&after={i}" for i in ids],
        "list-filter": [f"{PATH}?limit=20&{f}&after={i}" for i, f in zip(ids, cycle(filters))],
        "list-desc": [f"{PATH}?limit=20&order=desc&after={i}" for i in ids],
        "messages": [f"{PATH}/{i}/messages" for i in ids],
    }


def _measure_query(
    ctx: Context, plan: ReadPlan, server: Server, query: str, paths: list[str]
) -> dict[str, Any]:
    port = server.port
    requests = [loadgen.get_request(HOST, port, path) for path in paths]
    status, body = loadgen.run(loadgen.fetch(HOST, port, requests[0]))
    if status != 200:
        raise BenchError(f"{query}: {paths[0]} answered {status}: {body[:200]!r}")
    url = f"http://{HOST}:{port}"
    if plan.warmup_s:
        run_wrk(url, seconds=plan.warmup_s, connections=plan.connections, paths=paths)
    window = server.window()
    result = run_wrk(url, seconds=plan.window_s, connections=plan.connections, paths=paths)
    usage = window.close()
    rated = loadgen.run(loadgen.run_rate(HOST, port, requests, rate=plan.rate, seconds=plan.rate_s))
    row = {
        "rps": result.rps,
        "requests": result.requests,
        "failed": result.errors + result.non_2xx + rated.errors + rated.non_2xx,
        "cpu_us_per_request": usage.cpu_s / result.requests * 1e6 if result.requests else None,
        "load_core_busy": usage.busy.get(ctx.load_core),
        "rate": plan.rate,
        "p50_ms": rated.p50_ms,
        "p99_ms": rated.p99_ms,
        "max_ms": rated.max_ms,
    }
    if not (result.ok and rated.ok):
        raise BenchError(
            f"{query}: of {result.requests} requests at 64 connections {result.errors} got no "
            f"answer (socket errors, timeouts) and {result.non_2xx} answered other than 2xx; "
            f"of {rated.sent} at {plan.rate:g}/s, {rated.errors} and {rated.non_2xx}"
        )
    return row


@dataclass
class _Store:
    """One store of the reads: where it is, and how its fill went."""

    engine: str
    url: str
    path: Path | None = None
    database: str | None = None
    cached: bool = False
    fill_s: float | None = None
    error: str | None = None


def _cache_path(rows: int) -> Path:
    """Where a filled SQLite store is kept between runs: named after the filler's source
    and chatkeep's migrations, so that a change to either makes a fresh fill."""
    key = hashlib.sha256(FILL_SCRIPT.read_bytes())
    key.update(" ".join(m.name for m in MIGRATIONS).encode())
    return CACHE / f"reads-{rows}-{key.hexdigest()[:12]}.db"


def _prepare(ctx: Context, plan: ReadPlan) -> list[_Store]:
    if plan.cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        path = _cache_path(plan.rows)
        for stale in CACHE.glob(f"reads-{plan.rows}-*.db*"):
            if not stale.name.startswith(path.name):  # an older filler's: 4+ GB each
                stale.unlink()
        cached = path.exists() and not Path(f"{path}.filling").exists()
        stores = [_Store("sqlite", f"sqlite:///{path}", path=path, cached=cached)]
    else:
        path = ctx.work / "reads.db"
        stores = [_Store("sqlite", f"sqlite:///{path}", path=path)]
    if ctx.postgres_admin is not None:
        name = pg.create_database(ctx.postgres_admin, prefix="chatkeep_bench_reads")
        stores.append(_Store("postgres", pg.database_url(ctx.postgres_admin, name), database=name))
    return stores


def _fill_all(ctx: Context, plan: ReadPlan, stores: list[_Store]) -> None:
    """Fill the stores that need it, side by side (one core each), with fill_store.py."""
    if not FILL_SCRIPT.exists():
        for store in stores:
            store.error = f"{FILL_SCRIPT} is not there: the reads need it to fill the store"
        return
    running: list[tuple[_Store, subprocess.Popen[bytes], float]] = []
    for store in stores:
        if store.cached:
            print(f"    {store.engine}: reusing {store.path}", flush=True)
            continue
        if store.path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{store.path}{suffix}").unlink(missing_ok=True)
            Path(f"{store.path}.filling").touch()
        log = (ctx.logs / f"fill-{store.engine}.log").open("wb")
        argv = [
            ctx.python,
            str(FILL_SCRIPT),
            "--database-url",
            store.url,
            "--count",
            str(plan.rows),
        ]
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        running.append((store, process, time.monotonic()))
    deadline = time.monotonic() + plan.fill_timeout_s
    for store, process, started in running:
        try:
            code = process.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = -1
        store.fill_s = time.monotonic() - started
        if code != 0:
            store.error = f"fill_store.py failed ({code}); see fill-{store.engine}.log"
        elif store.path is not None:
            Path(f"{store.path}.filling").unlink(missing_ok=True)
        print(f"    {store.engine}: filled {plan.rows:,} in {store.fill_s:.0f} s", flush=True)


async def _postgres(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _settle_postgres(store: _Store) -> None:
    """Write out what the fill left dirty now, not while reads are being measured."""
    asyncio.run(_postgres(store.url, "CHECKPOINT"))


def _warm(store: _Store) -> None:
    """Bring the store into memory: the reads measure queries, not a cold disk.

    (This machine's page cache is also reclaimed proactively, so a store filled minutes
    ago may be on disk again.)
    """
    if store.path is not None:
        with store.path.open("rb", buffering=0) as file:
            while file.read(16 * 2**20):
                pass
        return
    relations = (
        "completions",
        "completions_pkey",
        "completion_metadata",
        "completion_metadata_pkey",
        "completion_metadata_filter",
    )
    try:
        asyncio.run(
            _postgres(
                store.url,
                "CREATE EXTENSION IF NOT EXISTS pg_prewarm",
                *(f"SELECT pg_prewarm('{name}')" for name in relations),
            )
        )
    except asyncpg.PostgresError as exc:  # pg_prewarm is in postgresql-contrib
        print(f"    postgres: not prewarmed ({exc})", flush=True)


def _sample(store: _Store, plan: ReadPlan) -> list[str]:
    if store.path is not None:
        return _sample_sqlite(store.path, plan.sample)
    return asyncio.run(_sample_postgres(store.url, plan.sample, plan.rows))


def _measure_store(ctx: Context, plan: ReadPlan, store: _Store) -> list[dict[str, Any]]:
    base = {"store": store.engine, "fill_s": store.fill_s, "cached_store": store.cached}
    rows: list[dict[str, Any]] = []
    server: Server | None = None
    try:
        paths = _paths(_sample(store, plan))
        server = start_chatkeep(ctx, f"reads-{store.engine}", store.url, config=None)
        server.wait_ready(120)
        for query in QUERIES:
            row: dict[str, Any] = {**base, "query": query}
            try:
                row.update(_measure_query(ctx, plan, server, query, paths[query]))
            except BenchError as exc:
                row["error"] = str(exc)
            rows.append(row)
    except Exception as exc:  # reported as a failed row; the rest of the suite goes on
        rows.append({**base, "query": "start", "error": f"{type(exc).__name__}: {exc}"})
    finally:
        if server is not None:
            server.stop()
    return rows


def _read_latency(ctx: Context, plan: ReadPlan, store: _Store) -> dict[str, Any]:
    """bench/read_latency.py on the filled store: closed loop, 4 connections, its queries
    (the rare-filter worst case included), its own server on either core."""
    if not READ_LATENCY_SCRIPT.exists():
        return {"error": f"{READ_LATENCY_SCRIPT} is not there"}
    out = ctx.work / f"read-latency-{store.engine}.json"
    argv = [
        "taskset",
        "-c",
        f"{ctx.server_core},{ctx.load_core}",
        ctx.python,
        str(READ_LATENCY_SCRIPT),
        "--database-url",
        store.url,
        "--requests",
        str(plan.latency_requests),
        "--json",
        str(out),
    ]
    with (ctx.logs / f"read-latency-{store.engine}.log").open("wb") as log:
        try:
            code = subprocess.run(
                argv, stdout=log, stderr=subprocess.STDOUT, timeout=300
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    if code != 0 or not out.exists():
        return {"error": f"read_latency.py failed ({code}); see read-latency-{store.engine}.log"}
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    return result


def _cleanup(ctx: Context, stores: list[_Store]) -> None:
    for store in stores:
        if store.database is not None and ctx.postgres_admin is not None:
            pg.drop_database(ctx.postgres_admin, store.database)
        if store.path is not None and (store.error or not str(store.path).startswith(str(CACHE))):
            for suffix in ("", "-wal", "-shm", ".filling"):
                Path(f"{store.path}{suffix}").unlink(missing_ok=True)


def measure_reads(ctx: Context, plan: ReadPlan) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of this suite's read measurements, and read_latency.py's results by store."""
    rows: list[dict[str, Any]] = []
    latency: dict[str, Any] = {}
    stores = _prepare(ctx, plan)
    try:
        _fill_all(ctx, plan, stores)
        for store in stores:
            if store.database is not None and store.error is None:
                _settle_postgres(store)
        for store in stores:
            if store.error is not None:
                rows.append({"store": store.engine, "query": "fill", "error": store.error})
                continue
            print(f"    {store.engine}: warming and measuring", flush=True)
            _warm(store)
            rows += _measure_store(ctx, plan, store)
            latency[store.engine] = _read_latency(ctx, plan, store)
    finally:
        _cleanup(ctx, stores)
    for row in rows:
        if row.get("error"):
            print(f"  FAILED reads {row['store']} {row['query']}: {row['error']}", flush=True)
    return rows, latency
