"""Server time of the web UI's completions page on a big store, beside its JSON twin.

    python bench/ui_list.py --database-url URL [--fill N] [--requests N] [--json FILE]

Fill the database first (`bench/fill_store.py --count 1000000 --days 60`, project
`default`), or pass `--fill N` to fill an empty one here. The app runs in this process
(`create_app`, as `chatkeep serve` builds it; open loopback mode, as the filled database
holds no key) and is called through `httpx`'s ASGI transport: no socket, so the time is the
server's own work (routing, the store's reads, the previews' message reads, the template),
measured around each call. Each case runs N requests one after another after 5 unmeasured
ones; every answer must be a 200 with a full page. Cases: the first page; a page after a
random cursor; a two-key metadata filter (`fill_store.TYPICAL_FILTERS`) from a random
cursor; a model filter from a random cursor; a one-day time range; the rare-pair worst case
(`fill_store.RARE_FILTER`), first page. Prints a Markdown table (median, p95, max in ms),
the page's and its JSON twin's side by side. Smoke: `--fill 2000 --requests 20`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx2

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.ui.filters import parse_filters
from fill_store import RARE_FILTER, TYPICAL_FILTERS, fill
from read_latency import sample_ids

WARM_UP = 5
Case = Callable[[random.Random], list[tuple[str, str]]]


def _pairs(metadata: dict[str, str]) -> list[tuple[str, str]]:
    return [item for key, value in metadata.items() for item in (("mk", key), ("mv", value))]


def cases(ids: list[str]) -> dict[str, Case]:
    day = (datetime.now(UTC) - timedelta(days=30)).replace(hour=0, minute=0, second=0)
    window = [
        ("from", day.strftime("%Y-%m-%dT%H:%M")),
        ("until", (day + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")),
    ]
    return {
        "first page": lambda rng: [],
        "after a random cursor": lambda rng: [("after", rng.choice(ids))],
        "2-key metadata filter, random cursor": lambda rng: [
            *_pairs(rng.choice(TYPICAL_FILTERS)),
            ("after", rng.choice(ids)),
        ],
        "model filter, random cursor": lambda rng: [
            ("model", "gpt-4o"),
            ("after", rng.choice(ids)),
        ],
        "one-day time range": lambda rng: window,
        "rare pair (worst case), first page": lambda rng: _pairs(RARE_FILTER),
    }


async def timed(client: httpx2.AsyncClient, path: str) -> float:
    started = time.perf_counter()
    answer = await client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:300]}")
    shown = '<td class="when">' in answer.text or answer.text.startswith('{"object":"list"')
    if not shown:
        raise RuntimeError(f"{path} showed no completion")
    return elapsed


async def measure(database_url: str, ids: list[str], requests: int, seed: int) -> dict[str, Any]:
    app = create_app(Settings(database_url=database_url, purge_interval_seconds=0))
    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://chatkeep") as client:
            for name, case in cases(ids).items():
                rng = random.Random(seed)
                row: dict[str, Any] = {}
                for kind in ("page", "json"):
                    times = []
                    for n in range(WARM_UP + requests):
                        params = case(rng)
                        if kind == "page":
                            path = f"/ui?{urlencode(params)}"
                        else:
                            path = parse_filters(params).api_url()
                        elapsed = await timed(client, path)
                        if n >= WARM_UP:
                            times.append(elapsed)
                    times.sort()
                    row[kind] = {
                        "median_ms": statistics.median(times),
                        "p95_ms": times[max(0, int(len(times) * 0.95) - 1)],
                        "max_ms": times[-1],
                    }
                results[name] = row
                print(f"  {name}: page median {row['page']['median_ms']:.1f} ms", file=sys.stderr)
    return results


def markdown(results: dict[str, Any], count: str) -> str:
    lines = [
        f"Web UI completions page, SQLite, {count} stored completions (server time, ms)",
        "",
        "| case | page median | page p95 | page max | JSON twin median | JSON twin p95 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in results.items():
        page, twin = row["page"], row["json"]
        lines.append(
            f"| {name} | {page['median_ms']:.1f} | {page['p95_ms']:.1f} | {page['max_ms']:.1f} "
            f"| {twin['median_ms']:.1f} | {twin['p95_ms']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--fill", type=int, default=0, help="fill this many first")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None)
    parser.add_argument("--label", default="the filled store's", help="the store, for the title")
    args = parser.parse_args(argv)
    if args.fill:
        fill(args.database_url, args.fill, 1, args.seed, 1000, 60)
    ids, size = sample_ids(args.database_url, 10_000, args.seed)
    results = asyncio.run(measure(args.database_url, ids, args.requests, args.seed))
    table = markdown(results, f"{args.label} ({size / 2**20:,.0f} MiB)")
    print(table)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"database_bytes": size, "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
