"""Read latency of a filled store, through a real `chatkeep serve` over loopback.

    python bench/read_latency.py --database-url URL [--requests N] [--concurrency C]
                                 [--json FILE] [--label TEXT]

Fill the database first (`bench/fill_store.py`, project `default`). This starts `chatkeep
serve` on it, samples existing ids from the database, and for each query sends N requests
(after a short unmeasured warm-up) from C concurrent keep-alive connections, each sending
its next request when the last is answered; every answer must be a 200. Queries:

- `get`: `GET /v1/chat/completions/{id}` of a random id;
- `list, 2-key filter, asc` / `desc`: `metadata[env]=prod&metadata[team]=team-0X`
  (`fill_store.TYPICAL_FILTERS`, about 1-10 % of rows), `limit=20`, from a random `after`;
- `list, no filter, desc`: `limit=20` from a random `after`;
- `messages`: `GET /v1/chat/completions/{id}/messages` of a random id;
- `list, rare pair, asc` / `desc`: the worst case (`fill_store.RARE_FILTER`: env=prod, which
  most rows have, and a user with a handful), its common pair first, first page; at most
  200 requests.

Prints a Markdown table (median, p99 and max in ms, requests/s) and, with `--json FILE`,
writes it as JSON with the database's size. Smoke mode: `--requests 50` on a store filled
with `--count 1000` (a few seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg  # type: ignore[import-untyped]

from chatkeep.store.factory import sqlite_path
from chatkeep.store.sqlite_driver import sqlite3
from fill_store import DEFAULT_PROJECT, RARE_FILTER, TYPICAL_FILTERS

PathMaker = Callable[[random.Random], str]
RARE_REQUESTS = 200
SAMPLE_IDS = 20_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def chatkeep_serve(database_url: str) -> Iterator[str]:
    """A `chatkeep serve` process on the database; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATKEEP_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatkeep",
            "serve",
            "--port",
            str(port),
            "--database-url",
            database_url,
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _healthy(base):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                output = proc.communicate()[0].decode(errors="replace")
                raise RuntimeError(f"chatkeep serve did not start:\n{output}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _healthy(base: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=1) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def sample_ids(database_url: str, count: int, seed: int) -> tuple[list[str], int]:
    """Up to `count` random ids of the default project, and the database's size in bytes."""
    if database_url.startswith("sqlite:///"):
        path = sqlite_path(database_url)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:  # the primary key's index covers this: no row is read
            query = "SELECT id FROM completions WHERE project = ? ORDER BY id"
            ids = [row[0] for row in conn.execute(query, (DEFAULT_PROJECT,))]
        finally:
            conn.close()
        size = sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))
    else:

        async def fetch() -> tuple[list[str], int]:
            conn = await asyncpg.connect(database_url, timeout=10)
            try:
                rows = await conn.fetch(
                    "SELECT id FROM completions WHERE project = $1", DEFAULT_PROJECT
                )
                size = await conn.fetchval("SELECT pg_database_size(current_database())")
                return [row[0] for row in rows], int(size)
            finally:
                await conn.close()

        ids, size = asyncio.run(fetch())
    if not ids:
        raise RuntimeError(f"no completions in project {DEFAULT_PROJECT!r}: fill it first")
    return random.Random(seed).sample(ids, min(count, len(ids))), size


def queries(ids: list[str]) -> list[tuple[str, PathMaker, int | None]]:
    """(name, a maker of request paths, at most this many requests or None)."""
    base = "/v1/chat/completions"

    def listing(params: dict[str, str], rng: random.Random, cursor: bool = True) -> str:
        page = {**params, "limit": "20"} | ({"after": rng.choice(ids)} if cursor else {})
        return f"{base}?{urlencode(page)}"

    def filtered(order: str) -> PathMaker:
        def path(rng: random.Random) -> str:
            pairs = rng.choice(TYPICAL_FILTERS)
            params = {f"metadata[{k}]": v for k, v in pairs.items()}
            return listing({**params, "order": order}, rng)

        return path

    def rare(order: str) -> PathMaker:
        params = {f"metadata[{k}]": v for k, v in RARE_FILTER.items()}
        return lambda rng: listing({**params, "order": order}, rng, cursor=False)

    return [
        ("get", lambda rng: f"{base}/{rng.choice(ids)}", None),
        ("list, 2-key filter, asc", filtered("asc"), None),
        ("list, 2-key filter, desc", filtered("desc"), None),
        ("list, no filter, desc", lambda rng: listing({"order": "desc"}, rng), None),
        ("messages", lambda rng: f"{base}/{rng.choice(ids)}/messages", None),
        ("list, rare pair, asc", rare("asc"), RARE_REQUESTS),
        ("list, rare pair, desc", rare("desc"), RARE_REQUESTS),
    ]


async def measure(
    base: str, make_path: PathMaker, requests: int, concurrency: int, seed: int
) -> dict[str, Any]:
    """Latencies (ms) of `requests` GETs from `concurrency` closed-loop workers."""
    rng = random.Random(seed)
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"authorization": "Bearer bench"}
    async with aiohttp.ClientSession(base, connector=connector, headers=headers) as session:

        async def one(path: str, keep: bool) -> None:
            started = time.perf_counter()
            async with session.get(path) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET {path} answered {response.status}")
            if keep:
                latencies.append((time.perf_counter() - started) * 1000)

        async def worker(count: int, keep: bool) -> None:
            for _ in range(count):
                await one(make_path(rng), keep)

        warmup = max(concurrency, min(50, requests // 10))
        await asyncio.gather(*(worker(warmup // concurrency, False) for _ in range(concurrency)))
        started = time.perf_counter()
        each, extra = divmod(requests, concurrency)
        shares = [each + (i < extra) for i in range(concurrency)]
        await asyncio.gather(*(worker(share, True) for share in shares))
        seconds = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(cuts[98], 2),
        "max_ms": round(max(latencies), 2),
        "requests_per_second": round(len(latencies) / seconds),
    }


def markdown(label: str, results: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"| {label} | requests | p50 ms | p99 ms | max ms | req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['requests']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} "
            f"| {r['requests_per_second']} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    ids, size = sample_ids(args.database_url, SAMPLE_IDS, args.seed)
    results: dict[str, dict[str, Any]] = {}
    with chatkeep_serve(args.database_url) as base:
        for index, (name, make_path, most) in enumerate(queries(ids)):
            count = min(args.requests, most) if most is not None else args.requests
            print(f"  {name}: {count} requests ...", file=sys.stderr)
            results[name] = asyncio.run(
                measure(base, make_path, count, args.concurrency, args.seed + index)
            )
    engine = "sqlite" if args.database_url.startswith("sqlite:") else "postgres"
    return {
        "label": args.label or engine,
        "engine": engine,
        "database_bytes": size,
        "concurrency": args.concurrency,
        "queries": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Read latency of a filled chatkeep store.")
    parser.add_argument("--database-url", required=True, help="sqlite:///... or postgresql://...")
    parser.add_argument("--requests", type=int, default=2000, help="measured requests a query")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent connections")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random choices")
    parser.add_argument("--label", default=None, help="the table's first header")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.requests < 2 or args.concurrency < 1:
        parser.error("--requests must be at least 2 and --concurrency at least 1")
    try:
        result = run(args)
    except (OSError, ValueError, RuntimeError, sqlite3.Error, asyncpg.PostgresError) as error:
        print(f"read_latency: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(markdown(result["label"], result["queries"]))
    print(f"\ndatabase size: {result['database_bytes'] / 2**20:,.1f} MiB")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
