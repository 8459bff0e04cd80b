"""List pages of a filled PostgreSQL store, in process: no HTTP, no second process.

    python bench/store_reads.py --database-url URL [--kind list|filter] [--rate 500]
                                [--seconds 10] [--warmup 10] [--core 0]
    PYTHONPATH=WORKTREE/src python bench/store_reads.py ...   # another commit's store

Opens `PostgresStore` on a database filled before (bench/lifecycle.py --keep, project
`default`), warms it with pages from 16 concurrent callers for `--warmup` seconds, then
asks for `--rate` pages a second for `--seconds` (open loop: each page starts on time,
whether or not the ones before it have ended), each after a random cursor (and with one
of `fill_store.TYPICAL_FILTERS` for `--kind filter`), newest first, 20 a page. Prints
p50/p99/max in ms, and how often the event loop was late by more than 3 ms meanwhile (a
call that holds the loop holds every page in flight). What bench/lifecycle.py measures
through the server, without the HTTP layer and the load generator sharing the machine:
for telling the store's share of a tail from the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from typing import Any

import uvloop

import fill_store
import lifecycle
import loadgen
from chatkeep.protocol.queries import ListQuery
from chatkeep.store.postgres import PostgresStore

LATE_S = 0.003  # a loop tick later than this counts as a stall
TICK_S = 0.001


async def measure(
    url: str, kind: str, rate: float, seconds: float, warmup: float
) -> dict[str, Any]:
    ids = await lifecycle.sample_ids(url, 2000)  # the cursors lifecycle.py reads after
    store = PostgresStore(url)
    await store.open()

    def query(n: int) -> ListQuery:
        pairs = fill_store.TYPICAL_FILTERS[n % len(fill_store.TYPICAL_FILTERS)]
        metadata = dict(pairs) if kind == "filter" else {}
        return ListQuery(limit=20, order="desc", after=random.choice(ids), metadata=metadata)

    try:
        end = time.perf_counter() + warmup

        async def warm(first: int) -> None:
            n = first
            while time.perf_counter() < end:
                await store.list("default", query(n))
                n += 16

        await asyncio.gather(*(warm(k) for k in range(16)))

        latencies: list[float] = []
        stalls: list[float] = []
        running = True

        async def page(n: int) -> None:
            started = time.perf_counter()
            await store.list("default", query(n))
            latencies.append(time.perf_counter() - started)

        async def ticks() -> None:
            while running:
                before = time.perf_counter()
                await asyncio.sleep(TICK_S)
                late = time.perf_counter() - before - TICK_S
                if late > LATE_S:
                    stalls.append(late)

        ticking = asyncio.create_task(ticks())
        start = time.perf_counter()
        pages = []
        for n in range(int(rate * seconds)):
            wait = start + n / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            pages.append(asyncio.create_task(page(n)))
        await asyncio.gather(*pages)
        running = False
        await ticking
    finally:
        await store.close()
    latencies.sort()

    def ms(value: float) -> float:
        return round(value * 1000, 2)

    def share(fraction: float) -> float:
        return ms(loadgen.percentile(latencies, fraction))

    return {
        "kind": kind,
        "rate": rate,
        "pages": len(latencies),
        "p50_ms": share(0.50),
        "p99_ms": share(0.99),
        "max_ms": ms(latencies[-1]),
        "loop_stalls": len(stalls),
        "longest_stall_ms": ms(max(stalls, default=0.0)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--kind", choices=("list", "filter"), default="list")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--core", type=int, default=0, help="the core to run on (-1: any)")
    args = parser.parse_args(argv)
    if args.core >= 0:
        os.sched_setaffinity(0, {args.core})
    run = measure(args.database_url, args.kind, args.rate, args.seconds, args.warmup)
    print(json.dumps(uvloop.run(run)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
