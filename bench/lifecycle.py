"""PostgreSQL at scale: reads on millions of completions spread over many days, purges
of a day (in batches) and of a week (partitions dropped), and where the bytes go.

    python bench/lifecycle.py [--rows 5000000] [--base 200000] [--days 60] [--rate 500]
                              [--seconds 4] [--warmup 4] [--cores 0,1] [--json FILE]
                              [--keep] [--migration]
    python bench/lifecycle.py --reads-only URL      # the reads of a database filled before
    python bench/lifecycle.py --reads-only URL --server-src WORKTREE/src   # by another commit
    python bench/lifecycle.py --reads-only URL --recent-days 12   # cursors of the newest days

Fills a throwaway database (`BENCH_POSTGRES_URL`, loopback): `--base` completions by
bench/fill_store.py, ids spread evenly over the last `--days` days, then copied inside
PostgreSQL until there are `--rows` (each copy keeps its original's first 10 id digits, that
is its millisecond and its day, and takes 19 new ones: the same time spread, new ids), then
each table rewritten in id order (CLUSTER), as a server minting them over time lays them. The
project's retention is set longer than `--days`, or the server's first purge (30 days by
default) would remove half. With `--migration`, the database is first rewound to the 0003
layout (one table of whole completions) and `chatkeep db upgrade` is timed bringing it back,
so the reads below run on what the migration made. Then, through a real `chatkeep serve`:
get by id, list (a page after a random cursor) and a 2-key filtered list
(`fill_store.TYPICAL_FILTERS`, after a random cursor), each at `--rate` requests/s for
`--seconds` after `--warmup` seconds of wrk at 64 connections, p50/p99 as
bench/reads.py measures them at 1M (the server on core 0, the load on core 1: `--cores`),
with what the machine read from its disks meanwhile (`disk_read_kib`), what else took
its cores (`init_ms`, `kdamond_ms`: `neighbours`) and the files PostgreSQL's backends held
open after it (`pg_open_files`). Then
purges by chatkeep's own `PostgresStore.purge`, timed, with each table's size before and
after (`purges`): the oldest day and the next (their day leaves dropped), six hours of the
day after (batched DELETEs, then a VACUUM of that day's leaves), then the rest of that
week (its partitions dropped). The database is dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg  # type: ignore[import-untyped]

import fill_store
import loadgen
import neighbours
import pg
import read_latency
from chatkeep.ids import completion_id_floor, completion_id_ms
from chatkeep.store import postgres_partitions as partitions
from chatkeep.store.base import Cutoffs
from chatkeep.store.postgres import PostgresStore
from processes import Server
from targets import chatkeep_env
from wrk import run_wrk

PATH = "/v1/chat/completions"
TABLES = ("completions", "completion_content", "completion_metadata")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def replicate(url: str, base: int, rows: int) -> None:
    """Copy the `base` completions (with content and pairs) until there are `rows`."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute("SET synchronous_commit = off")
        copies = -(-rows // base) - 1
        await conn.execute("CREATE TEMP TABLE base_ids AS SELECT id FROM completions ORDER BY id")
        for k in range(1, copies + 1):
            take = min(base, rows - base * k)
            if take <= 0:
                break
            started = time.perf_counter()
            async with conn.transaction():
                await conn.execute(
                    "CREATE TEMP TABLE idmap ON COMMIT DROP AS SELECT id, "
                    "left(id, 19) || left(md5(id || $1::text), 19) AS nid "
                    "FROM (SELECT id FROM base_ids LIMIT $2) AS base",
                    str(k), take,
                )  # fmt: skip
                await conn.execute("CREATE INDEX ON idmap (id)")
                await conn.execute(
                    "INSERT INTO completions SELECT c.project, m.nid, c.model, c.created, "
                    "c.metadata, c.usage, c.finish_reasons, c.latency_ms "
                    "FROM idmap AS m JOIN completions AS c ON c.id = m.id "
                    "AND c.project = 'default'"
                )
                await conn.execute(
                    "INSERT INTO completion_content SELECT c.project, m.nid, c.completion, "
                    "c.messages FROM idmap AS m JOIN completion_content AS c ON c.id = m.id "
                    "AND c.project = 'default'"
                )
                await conn.execute(
                    "INSERT INTO completion_metadata SELECT c.project, m.nid, c.key, c.value "
                    "FROM idmap AS m JOIN completion_metadata AS c ON c.completion_id = m.id "
                    "AND c.project = 'default'"
                )
            log(f"  copy {k}/{copies}: {take:,} in {time.perf_counter() - started:.1f} s")
        # Each copy went in after the last, so consecutive ids lie in different copies' runs
        # of pages; a server mints them in order and lays them out in order. Rewrite each
        # table in id order (its primary key), or a page of 20 reads 20 scattered pages.
        log("  CLUSTER in id order, VACUUM ANALYZE, CHECKPOINT ...")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for table in ("completions", "completion_content", "completion_metadata"):
            await conn.execute(f"CLUSTER {table} USING {table}_pkey")
        await conn.execute("VACUUM ANALYZE completions, completion_content, completion_metadata")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def sizes(url: str) -> dict[str, Any]:
    """Bytes of each table with its indexes and TOAST, summed over its partitions."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        found: dict[str, Any] = {}
        for table in TABLES:
            row = await conn.fetchrow(
                # A plain table is its own tree of one (pg_partition_tree gives no rows).
                "SELECT sum(pg_table_size(relid)), sum(pg_indexes_size(relid)), "
                "count(*) FILTER (WHERE isleaf) FROM (SELECT relid, isleaf FROM "
                "pg_partition_tree($1) UNION ALL SELECT $1::regclass, true WHERE NOT EXISTS "
                "(SELECT FROM pg_partition_tree($1))) AS tree",
                table,
            )
            found[table] = {"table": int(row[0]), "indexes": int(row[1]), "partitions": row[2]}
        found["rows"] = await conn.fetchval("SELECT count(*) FROM completions")
        found["pairs"] = await conn.fetchval("SELECT count(*) FROM completion_metadata")
        found["database"] = await conn.fetchval("SELECT pg_database_size(current_database())")
        return found
    finally:
        await conn.close()


async def sample_ids(url: str, count: int, recent_days: float | None = None) -> list[str]:
    """Random ids of the default project: of every day, or of the newest `recent_days`."""
    floor = ""
    if recent_days is not None:
        floor = completion_id_floor(int((time.time() - recent_days * 86_400) * 1000))
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT id FROM completions TABLESAMPLE SYSTEM (1) "
            "WHERE project = 'default' AND id >= $1",
            floor,
        )
    finally:
        await conn.close()
    ids = [row[0] for row in rows]
    return random.sample(ids, min(count, len(ids)))


def read_figures(
    url: str,
    ids: list[str],
    rate: float,
    seconds: float,
    warmup: float = 4,
    cores: tuple[int, int] | None = (0, 1),
    server_src: Path | None = None,
) -> dict[str, Any]:
    """Each kind of read as bench/reads.py measures it at 1M: wrk at 64 connections for
    `warmup` seconds (reads.py's warm-up and throughput window; its requests/s are
    reported), then `rate` requests/s for `seconds`, p50/p99 from that. With `cores`, the
    server runs on the first and this process (the load) on the second, as run.py pins
    them; PostgreSQL runs where the system puts it. With `server_src`, the server is the
    chatkeep found there (another commit's `src`, as `run.py --baseline` runs one)."""
    filters = [
        "&".join(f"{quote(f'metadata[{key}]')}={quote(value)}" for key, value in pairs.items())
        for pairs in fill_store.TYPICAL_FILTERS
    ]
    paths = {
        "get": [f"{PATH}/{i}" for i in ids],
        "list": [f"{PATH}?limit=20&after={i}" for i in ids],
        "list-filter": [
            f"{PATH}?limit=20&{filters[n % len(filters)]}&after={i}" for n, i in enumerate(ids)
        ],
    }
    if cores is not None:
        os.sched_setaffinity(0, {cores[1]})
    port = read_latency.free_port()
    argv = [sys.executable, "-m", "chatkeep", "serve", "--port", str(port)]
    argv += ["--database-url", url, "--log-level", "warning"]
    server_core = cores[0] if cores is not None else ",".join(map(str, os.sched_getaffinity(0)))
    results: dict[str, Any] = {}
    database = urlsplit(url).path.lstrip("/")
    with (
        tempfile.TemporaryDirectory(prefix="chatkeep-lifecycle-") as logs,
        Server("chatkeep", argv, core=server_core, port=port, log=Path(logs) / "serve.log",
               env=chatkeep_env(server_src), whole_env=True) as server,
    ):  # fmt: skip
        server.wait_ready(120)
        for query, wanted in paths.items():
            requests = [loadgen.get_request("127.0.0.1", port, path) for path in wanted]
            status, body = loadgen.run(loadgen.fetch("127.0.0.1", port, requests[0]))
            if status != 200:
                raise RuntimeError(f"{query}: {wanted[0]} answered {status}: {body[:200]!r}")
            warm = run_wrk(f"http://127.0.0.1:{port}", seconds=max(1, round(warmup)), paths=wanted)
            read_before, window = disk_read_kib(), server.window()
            beside = neighbours.Neighbours()
            rated = loadgen.run(
                loadgen.run_rate("127.0.0.1", port, requests, rate=rate, seconds=seconds)
            )
            read_during, usage = disk_read_kib() - read_before, window.close()
            others = beside.close()
            results[query] = {
                "warmup_rps": round(warm.rps),
                "rate": rate,
                "sent": rated.sent,
                "failed": warm.errors + warm.non_2xx + rated.errors + rated.non_2xx,
                "p50_ms": round(rated.p50_ms, 2),
                "p99_ms": round(rated.p99_ms, 2),
                "max_ms": round(rated.max_ms, 2),
                # What the machine read from its disks while the rate ran: a p99 with
                # reads here is the disk's (a working set larger than the page cache).
                "disk_read_kib": read_during,
                # The server's CPU per request, and how long it waited for a core that
                # other work held (PostgreSQL, the machine's other services): a p99 with a
                # long wait here is the machine's, not the server's.
                "server_cpu_us": round(usage.cpu_s / rated.sent * 1e6),
                "server_wait_ms": round(usage.wait_s * 1000, 1),
                # What else took a core meanwhile (`neighbours`): the machine's PID 1, whose
                # scan of every process's open files grows with PostgreSQL's, and DAMON.
                "init_ms": others.init_ms,
                "kdamond_ms": others.kdamond_ms,
                "pg_open_files": neighbours.open_files(pg.backend_pids(pg.admin_url(), database)),
            }
            log(f"  {query}: {results[query]}")
    return results


def disk_read_kib() -> int:
    """KiB read from block devices since boot, machine-wide (`pgpgin`)."""
    for line in Path("/proc/vmstat").read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == "pgpgin":
            return int(value)
    return 0


def day_floor(day: date) -> str:
    """The smallest id minted on `day` (UTC)."""
    return completion_id_floor(int(datetime(*day.timetuple()[:3], tzinfo=UTC).timestamp()) * 1000)


async def _oldest(url: str) -> str:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        oldest: str = await conn.fetchval("SELECT min(id) FROM completions")
        return oldest
    finally:
        await conn.close()


class _Phases(logging.Handler):
    """Keeps the phase times of the store's "purge phases" log line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("purge phases") and isinstance(record.args, tuple):
            names = ("dropped", "batches", "vacuum")
            pairs = zip(names, record.args, strict=True)
            self.seconds = {name: round(float(value), 3) for name, value in pairs}


async def _timed_purge(store: PostgresStore, url: str, cut: str, label: str) -> dict[str, Any]:
    before = await sizes(url)
    phases = _Phases()
    purge_log = logging.getLogger("chatkeep.store.postgres_purge")
    purge_log.addHandler(phases)
    purge_log.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        found = await store.purge(lambda _: Cutoffs(None, cut))
    finally:
        purge_log.removeHandler(phases)
    seconds = time.perf_counter() - started
    after = await sizes(url)
    removed = sum(count.records for count in found.values())
    log(f"  purge {label}: {removed:,} records in {seconds:.3f} s {phases.seconds}")
    return {
        "records_removed": removed,
        "seconds": round(seconds, 3),
        "phases_seconds": phases.seconds,
        "database_bytes_before": before["database"],
        "database_bytes_after": after["database"],
        "tables_before": {t: before[t] for t in TABLES},
        "tables_after": {t: after[t] for t in TABLES},
    }


async def purges(url: str) -> dict[str, Any]:
    """Purges by chatkeep's own `PostgresStore.purge`, each timed with the tables' sizes
    before and after: the oldest day (partial: the fill starts mid-day), then the next,
    a whole day (both dropped as day leaves), then six hours of the day after (a cutoff
    inside a day, as an hourly run has: batched DELETEs, then a VACUUM of that day's
    leaves), then the rest of that week (its partitions detached and dropped)."""
    store = PostgresStore(url, pool_min=1, pool_max=4, command_timeout=600)
    await store.open()
    try:
        oldest = await _oldest(url)
        first_day = datetime.fromtimestamp(completion_id_ms(oldest) / 1000, UTC).date()
        week = partitions.week_of(oldest)
        results = {}
        steps = [
            ("oldest_day", day_floor(first_day + timedelta(days=1)), "of the oldest day"),
            ("one_day", day_floor(first_day + timedelta(days=2)), "of one whole day"),
            ("six_hours", completion_id_floor(
                completion_id_ms(day_floor(first_day + timedelta(days=2))) + 6 * 3_600_000
            ), "of six hours inside a day"),
        ]  # fmt: skip
        end = partitions.week_bounds(week)[1] or ""
        for key, cut, label in steps:
            if cut < end:
                results[key] = await _timed_purge(store, url, cut, label)
        results["week"] = await _timed_purge(store, url, end, "of the rest of a week")
        return results
    finally:
        await store.close()


# The 0003 layout (schema.py's _COMPLETIONS, _FILTERS), rebuilt from the filled tables.
_REWIND = (
    """CREATE TABLE completions_0003 AS
        SELECT c.project, c.id, c.model, c.created, cc.completion, c.metadata, cc.messages
        FROM completions AS c JOIN completion_content AS cc USING (project, id)""",
    "CREATE TABLE completion_metadata_0003 AS SELECT * FROM completion_metadata",
    "DROP TABLE completion_metadata, completion_content, completions, projects",
    "ALTER TABLE completions_0003 RENAME TO completions",
    "ALTER TABLE completion_metadata_0003 RENAME TO completion_metadata",
    "ALTER TABLE completions ADD PRIMARY KEY (project, id)",
    "ALTER TABLE completions ALTER COLUMN metadata SET DEFAULT '{}'",
    "ALTER TABLE completion_metadata ADD PRIMARY KEY (project, completion_id, key)",
    """ALTER TABLE completion_metadata ADD FOREIGN KEY (project, completion_id)
        REFERENCES completions (project, id) ON DELETE CASCADE""",
    "CREATE INDEX completion_metadata_filter "
    "ON completion_metadata (project, key, value, completion_id)",
    "CREATE INDEX completions_model ON completions (project, model, id)",
    "CREATE INDEX completions_created ON completions (created)",
    "DELETE FROM chatkeep_migrations WHERE name = '0004_lifecycle'",
    "VACUUM ANALYZE completions, completion_metadata",
)


async def migration(url: str) -> dict[str, Any]:
    """Rewind the filled database to the 0003 layout (in SQL, untimed), then time
    `chatkeep db upgrade` (the store's `upgrade()`) bringing it back: 0004 in full."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        log("  rewinding to the 0003 layout ...")
        for statement in _REWIND:
            await conn.execute(statement)
    finally:
        await conn.close()
    started = time.perf_counter()
    applied = await PostgresStore(url, command_timeout=3600).upgrade()
    seconds = time.perf_counter() - started
    log(f"  upgrade {', '.join(applied)}: {seconds:.1f} s")
    return {"applied": applied, "seconds": round(seconds, 1)}


async def _keep(url: str, days: float) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        kept = f"{int(days) + 30}d"
        policy = json.dumps({"content_retention": kept, "record_retention": kept})
        await conn.execute(
            "INSERT INTO projects (name, settings, updated) VALUES ('default', $1, 0)", policy
        )
    finally:
        await conn.close()


def _cores(text: str) -> tuple[int, int]:
    server, load = (int(core) for core in text.split(","))
    return server, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--base", type=int, default=200_000)
    parser.add_argument("--days", type=float, default=60)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument(
        "--warmup",
        type=float,
        default=4,
        help="seconds of wrk at 64 connections before each kind of read is measured "
        "(bench/reads.py's 1 s warm-up and 3 s throughput window)",
    )
    parser.add_argument(
        "--cores",
        default="0,1",
        help="SERVER,LOAD: the cores the server and the load run on (as run.py pins "
        "them), or 'none' to leave them to the system",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--migration", action="store_true", help="also time the upgrade from the 0003 layout"
    )
    parser.add_argument("--reads-only", metavar="URL", help="measure reads of a filled database")
    parser.add_argument(
        "--server-src",
        type=Path,
        metavar="DIR",
        help="with --reads-only: serve with the chatkeep package in DIR (another commit's "
        "src, in a git worktree), to read a database that commit's fill_store.py filled",
    )
    parser.add_argument(
        "--recent-days",
        type=float,
        metavar="D",
        help="with --reads-only: cursors and ids from the newest D days only (where most "
        "reads of a store that keeps months fall), not from every day",
    )
    parser.add_argument("--purges-only", metavar="URL", help="time the purges of a filled database")
    parser.add_argument(
        "--no-purges", action="store_true", help="fill and read only (then --purges-only)"
    )
    args = parser.parse_args(argv)
    admin = pg.admin_url()
    cores = None if args.cores == "none" else _cores(args.cores)
    if args.reads_only:
        ids = asyncio.run(sample_ids(args.reads_only, 2000, args.recent_days))
        figures = read_figures(
            args.reads_only, ids, args.rate, args.seconds, args.warmup, cores, args.server_src
        )
        return _emit(figures, args.json)
    if args.purges_only:
        return _emit(asyncio.run(purges(args.purges_only)), args.json)
    name = pg.create_database(admin, prefix="chatkeep_lifecycle")
    url = pg.database_url(admin, name)
    result: dict[str, Any] = {"rows": args.rows, "base": args.base, "days": args.days}
    try:
        log(f"filling {name}: {args.base:,} by fill_store.py over {args.days:g} days")
        started = time.perf_counter()
        result["fill"] = fill_store.fill(url, args.base, 1, 1, 20_000, args.days)
        asyncio.run(replicate(url, args.base, args.rows))
        result["fill_seconds"] = round(time.perf_counter() - started, 1)
        if args.migration:
            result["migration"] = asyncio.run(migration(url))
        # Keep all 60 days: the default policy (30 days) would purge half at the server's start.
        asyncio.run(_keep(url, args.days))
        result["sizes"] = asyncio.run(sizes(url))
        log(f"  sizes: {result['sizes']}")
        ids = asyncio.run(sample_ids(url, 2000))
        result["reads"] = read_figures(url, ids, args.rate, args.seconds, args.warmup, cores)
        if not args.no_purges:
            result["purge"] = asyncio.run(purges(url))
    finally:
        if not args.keep:
            pg.drop_database(admin, name)
    return _emit(result, args.json)


def _emit(result: dict[str, Any], path: Path | None) -> int:
    """Print `result`, and write it to `path` (`--json`) too, whichever mode made it."""
    text = json.dumps(result, indent=2)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
