"""Full-text search on a big store, both engines: page latency and the index's size.

    python bench/search.py [--rows 1000000] [--engines sqlite,postgres] [--runs 200]
                           [--json FILE]
    python bench/search.py --fill URL --rows N     # fill a store now, keep it
    python bench/search.py --measure URL [--measure URL] --rows N   # measure it later

Fills a fresh store per engine with `fill_store.py` (ids over the last 30 days, so
PostgreSQL has its week partitions), then asks the store itself (no HTTP: the figure is
the store's) for search pages, newest first, 20 a page, `--runs` times each, and reports
p50/p99 in milliseconds:

- `every row`: a word of the system prompt, in every completion;
- `common`: a word of the text pool, in a few percent of completions;
- `rare`: the pool's least used word;
- `phrase`: two words side by side, as quoted;
- `prefix`: the first three letters of a common word, with `*`;
- `common + filter`: the common word and `env=prod` (70 % of rows);
- `common + sparse filter`: the common word and a user from the Zipf tail (a handful of
  rows): the worst case, every match walked to find them;
- `page 2`: the common word after the first page's last id.

The index's size: SQLite, the FTS5 table's pages (`dbstat`); PostgreSQL, the GIN indexes
plus the stored `tsvector` column; each as a share of the whole database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from chatkeep.store.sqlite_driver import sqlite3

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pg
from chatkeep.config import Settings
from chatkeep.protocol.queries import ListQuery
from chatkeep.protocol.search import parse_search
from chatkeep.store.factory import MigratableStore, open_store
from fill_store import RARE_FILTER, SYSTEM_PROMPT, TextPool

FILL_SEED = 1


def pool_words() -> tuple[str, str, str, str]:
    """(common word, rare word, a two-word phrase, a prefix) of the fill's text pool,
    which `fill_store.py` builds from its seed as here."""
    import random

    rng = random.Random(FILL_SEED)
    pool = TextPool(rng)
    counts: Counter[str] = Counter()
    for text, _ in pool.paragraphs:
        counts.update(set(re.findall(r"\w+", text.lower())))
    ranked = counts.most_common()
    common = ranked[len(ranked) // 10][0]  # not the very top: a typical common word
    rare = ranked[-1][0]
    first = pool.paragraphs[0][0].lower().rstrip(".").split()
    return common, rare, f'"{first[3]} {first[4]}"', common[:3] + "*"


def cases() -> dict[str, ListQuery]:
    common, rare, phrase, prefix = pool_words()
    everywhere = SYSTEM_PROMPT.split()[3]  # "helpful"
    sparse = dict(RARE_FILTER)

    def q(text: str, **kw: Any) -> ListQuery:
        return ListQuery(limit=20, order="desc", search=parse_search(text), **kw)

    return {
        "every row": q(everywhere),
        "common": q(common),
        "rare": q(rare),
        "phrase": q(phrase),
        "prefix": q(prefix),
        "common + filter": q(common, metadata={"env": "prod"}),
        "common + sparse filter": q(common, metadata=sparse),
    }


async def measure(store: MigratableStore, runs: int) -> list[dict[str, Any]]:
    results = []
    for name, query in {**cases(), "page 2": None}.items():
        if query is None:  # the common word's second page
            first = cases()["common"]
            page = await store.list("default", first)
            query = ListQuery(20, "desc", after=page[19]["id"], search=first.search)
        found = len(await store.list("default", query))  # warm, and what a page holds
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            await store.list("default", query)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        row = {
            "case": name,
            "search": query.search.text if query.search else "",
            "rows_on_page": min(found, 20),
            "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        }
        print(f"  {name:24} p50 {row['p50_ms']:>8} ms  p99 {row['p99_ms']:>8} ms", file=sys.stderr)
        results.append(row)
    return results


def fill(url: str, rows: int) -> None:
    command = [sys.executable, str(Path(__file__).parent / "fill_store.py")]
    args = ["--database-url", url, "--count", str(rows), "--days", "30", "--seed", str(FILL_SEED)]
    subprocess.run([*command, *args], check=True, stdout=sys.stderr)


def sqlite_sizes(path: str) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        total = conn.execute("SELECT sum(pgsize) FROM dbstat").fetchone()[0]
        index = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'completion_search%'"
        ).fetchone()[0]
    finally:
        conn.close()
    return {"database_bytes": total, "index_bytes": index}


async def postgres_sizes(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        total = await conn.fetchval("SELECT pg_database_size(current_database())")
        gin = await conn.fetchval(
            "SELECT sum(pg_relation_size(indexrelid)) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE '%search%'"
        )
        column = await conn.fetchval("SELECT sum(pg_column_size(search)) FROM completion_content")
    finally:
        await conn.close()
    return {"database_bytes": total, "index_bytes": int(gin) + int(column)}


async def bench_store(url: str, runs: int) -> list[dict[str, Any]]:
    store = open_store(Settings(database_url=url))
    await store.open()
    try:
        return await measure(store, runs)
    finally:
        await store.close()


def bench_engine(engine: str, rows: int, runs: int) -> dict[str, Any]:
    print(f"{engine}: filling {rows:,} completions", file=sys.stderr)
    if engine == "sqlite":
        with tempfile.TemporaryDirectory(prefix="chatkeep-bench-search-") as folder:
            path = f"{folder}/search.db"
            fill(f"sqlite:///{path}", rows)
            results = asyncio.run(bench_store(f"sqlite:///{path}", runs))
            sizes = sqlite_sizes(path)
    else:
        admin = pg.admin_url()
        problem = pg.reachable(admin)
        if problem:
            raise RuntimeError(f"PostgreSQL unreachable: {problem}")
        name = pg.create_database(admin, prefix="chatkeep_bench_search")
        try:
            url = pg.database_url(admin, name)
            fill(url, rows)
            results = asyncio.run(bench_store(url, runs))
            sizes = asyncio.run(postgres_sizes(url))
        finally:
            pg.drop_database(admin, name)
    share = sizes["index_bytes"] / sizes["database_bytes"]
    print(f"  index {sizes['index_bytes'] / 2**20:,.0f} MiB ({share:.0%})", file=sys.stderr)
    return {"engine": engine, "rows": rows, "cases": results, **sizes, "index_share": share}


def markdown(runs: list[dict[str, Any]]) -> str:
    names = [row["case"] for row in runs[0]["cases"]]
    head = "| case | " + " | ".join(f"{r['engine']} p50 / p99 ms" for r in runs) + " |"
    lines = [head, "| --- |" + " ---: |" * len(runs)]
    for n, name in enumerate(names):
        cells = [f"{r['cases'][n]['p50_ms']} / {r['cases'][n]['p99_ms']}" for r in runs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    sizes = [
        f"{r['engine']} {r['index_bytes'] / 2**20:,.0f} MiB of "
        f"{r['database_bytes'] / 2**20:,.0f} MiB ({r['index_share']:.0%})"
        for r in runs
    ]
    return "\n".join(lines) + "\n\nIndex size: " + "; ".join(sizes) + "\n"


def measure_existing(url: str, rows: int, runs: int) -> dict[str, Any]:
    """`--measure URL`: a store filled before (`--fill URL`), measured as it is."""
    engine = "sqlite" if url.startswith("sqlite") else "postgres"
    results = asyncio.run(bench_store(url, runs))
    if engine == "sqlite":
        sizes = sqlite_sizes(url.removeprefix("sqlite:///"))
    else:
        sizes = asyncio.run(postgres_sizes(url))
    share = sizes["index_bytes"] / sizes["database_bytes"]
    return {"engine": engine, "rows": rows, "cases": results, **sizes, "index_share": share}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--fill", metavar="URL", help="only fill this (empty) store, keep it")
    parser.add_argument(
        "--measure", metavar="URL", action="append", help="measure this filled store; repeat"
    )
    args = parser.parse_args(argv)
    if args.fill:
        fill(args.fill, args.rows)
        return 0
    if args.measure:
        runs = [measure_existing(url, args.rows, args.runs) for url in args.measure]
    else:
        runs = [bench_engine(e, args.rows, args.runs) for e in args.engines.split(",")]
    print(markdown(runs))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
