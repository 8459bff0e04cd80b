"""SQLite at scale: `chatkeep purge` removing a tenth of 1,000,000 stored completions, timed,
and the latency of creates and reads that a running server answers meanwhile.

    python bench/sqlite_purge.py [--rows 1000000] [--days 60] [--rate 100] [--get-rate 200]
                                 [--list-rate 20] [--seconds 30] [--json FILE] [--keep]

Fills a SQLite file in a temporary folder with `--rows` completions by bench/fill_store.py,
ids spread evenly over the last `--days` days, project `default`. Before the server starts,
the project's stored policy keeps everything (`--days` + 30 days), and the server runs with
its purge schedule off (`CHATKEEP_PURGE_INTERVAL_SECONDS=0`), so it never purges by itself.
Then, through a real `chatkeep serve` on loopback, an open-loop mixed load (bench/loadgen.py's
generator, one schedule per kind, all in one event loop): creates (`POST
/v1/chat/completions`, `store: true`, the echo model) at `--rate` per second, gets by id of
random completions that the purge keeps at `--get-rate`, and lists at `--list-rate` (half
the first page, `?limit=20`, which starts where the purge deletes; half `?limit=20&after=`
a random kept id). After 3 s of warm-up, it is measured for `--seconds` with no purge
(the baseline), then the project's retention is set to nine tenths of `--days` (`chatkeep
projects set`) and the same load runs for as long as a `chatkeep purge` process, started
with it, takes. Reported for each kind and both windows: sent, failed (errors and non-2xx,
with their statuses), p50/p99/max; for creates during the purge, how many took over 1 s and
the slowest create of each second. For the purge: its wall time (a process, so Python's
start-up is in it; `cli_overhead_seconds`, the fastest of three `chatkeep purge --dry-run`
of a project with nothing, shows how much), what it printed, the records it removed and how
many were below its cutoff just before; the file's and the WAL's bytes before and after.
The temporary folder is removed at the end unless `--keep`. Smoke mode: `--rows 50000
--seconds 5` (under a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httptools
import orjson

import fill_store
import loadgen
from chatkeep.ids import completion_id_floor
from chatkeep.store.sqlite_driver import sqlite3
from processes import free_port

HOST = "127.0.0.1"
PATH = "/v1/chat/completions"
MODEL = "echo-1"
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant. Answer in one sentence."},
    {"role": "user", "content": "What does retention remove, and when?"},
]
SAMPLE_IDS = 20_000
WARMUP_SECONDS = 3.0
DRAIN_SECONDS = 30.0
CONNECTIONS = 8  # opened before each schedule starts; more are opened when all are busy
DAY_MS = 86_400_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def chatkeep_env(**settings: str) -> dict[str, str]:
    """This environment without CHATKEEP_* settings, plus `settings` (as CHATKEEP_NAME)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATKEEP_")}
    env.update({f"CHATKEEP_{name.upper()}": value for name, value in settings.items()})
    return env


def _healthy(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@contextmanager
def serve(url: str, log_path: Path) -> Iterator[int]:
    """`chatkeep serve` on the database with its purge schedule off; yields its port."""
    port = free_port()
    argv = [sys.executable, "-m", "chatkeep", "serve", "--port", str(port),
            "--database-url", url, "--log-level", "warning"]  # fmt: skip
    with log_path.open("wb") as output:
        proc = subprocess.Popen(
            argv,
            env=chatkeep_env(purge_interval_seconds="0"),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not _healthy(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"chatkeep serve did not start:\n{tail}")
                time.sleep(0.1)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def chatkeep(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a `chatkeep` command on the database; raise with its output when it fails."""
    argv = [sys.executable, "-m", "chatkeep", *args, "--database-url", url]
    done = subprocess.run(
        argv, env=chatkeep_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[2:])} failed:\n{done.stdout}{done.stderr}")
    return done


def file_sizes(path: str) -> dict[str, int]:
    return {
        "db_bytes": os.path.getsize(path),
        "wal_bytes": os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0,
    }


def keep_everything(path: str, days: float) -> None:
    """Store a policy for `default` that keeps longer than the fill spans, as a server's
    first purge at the default 30 days would otherwise remove half."""
    kept = f"{math.ceil(days) + 30}d"
    policy = json.dumps({"content_retention": kept, "record_retention": kept})
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "INSERT INTO projects (name, settings, updated) VALUES (?, ?, 0) "
            "ON CONFLICT (name) DO UPDATE SET settings = excluded.settings",
            (fill_store.DEFAULT_PROJECT, policy),
        )
    finally:
        conn.close()


def retention_text(days: float) -> str:
    """A duration `chatkeep projects set` takes: whole days when it is, else hours."""
    hours = round(days * 24)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def kept_ids(path: str, keep_ms: int, count: int) -> list[str]:
    """Up to `count` random ids that a purge keeping `keep_ms` leaves, a day to spare."""
    floor = completion_id_floor(time.time_ns() // 1_000_000 - keep_ms + DAY_MS)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        ids = [row[0] for row in conn.execute(
            "SELECT id FROM completions WHERE project = ? AND id >= ?",
            (fill_store.DEFAULT_PROJECT, floor),
        )]  # fmt: skip
    finally:
        conn.close()
    if not ids:
        raise RuntimeError("no completion is newer than the purge's cutoff")
    return random.Random(1).sample(ids, min(count, len(ids)))


def below_cutoff(path: str, keep_ms: int) -> int:
    """How many records a purge keeping `keep_ms` would remove if it ran now."""
    floor = completion_id_floor(time.time_ns() // 1_000_000 - keep_ms)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT count(*) FROM completions WHERE project = ? AND id < ?",
            (fill_store.DEFAULT_PROJECT, floor),
        ).fetchone()
    finally:
        conn.close()
    found: int = row[0]
    return found


class _Recorded(loadgen._RateRun):
    """loadgen's open-loop run state, keeping each request's send time and status."""

    def __init__(self, host: str, port: int, requests: Sequence[bytes]) -> None:
        super().__init__(host, port, requests)
        self.samples: list[tuple[float, float, int]] = []  # (sent, seconds, status)
        self.statuses: dict[str, int] = {}

    async def one(self, connection: Any, data: bytes) -> None:
        started = time.perf_counter()
        try:
            status = await connection.send(data)
        except (OSError, httptools.HttpParserError) as exc:
            self.errors += 1
            name = type(exc).__name__
            self.statuses[name] = self.statuses.get(name, 0) + 1
            connection.close()
            return
        self.samples.append((started, time.perf_counter() - started, status))
        if not 200 <= status < 300:
            self.non_2xx += 1
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        self.idle.append(connection)


async def open_loop(
    port: int,
    requests: Sequence[bytes],
    rate: float,
    seconds: float,
    stop: asyncio.Event | None = None,
) -> tuple[_Recorded, int]:
    """Send `rate` requests a second (each one of `requests`) for `seconds` or until `stop`
    is set, whatever the answers' pace; returns the run and how many were sent."""
    run = _Recorded(HOST, port, requests)
    for _ in range(CONNECTIONS):
        run.idle.append(await loadgen._connect(HOST, port))
        run.opened += 1
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.01
    sent = 0
    while sent < rate * seconds and not (stop is not None and stop.is_set()):
        due = start + sent / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        sent += 1
        connection = await run.connection()
        if connection is None:
            run.errors += 1
            run.statuses["no connection"] = run.statuses.get("no connection", 0) + 1
            continue
        task = loop.create_task(run.one(connection, random.choice(requests)))
        run.tasks.add(task)
        task.add_done_callback(run.tasks.discard)
    if run.tasks:
        _, late = await asyncio.wait(set(run.tasks), timeout=DRAIN_SECONDS)
        run.errors += len(late)
        if late:
            run.statuses["unanswered"] = run.statuses.get("unanswered", 0) + len(late)
        for task in late:
            task.cancel()
    for connection in run.idle:
        connection.close()
    return run, sent


def summary(run: _Recorded, sent: int, rate: float) -> dict[str, Any]:
    latencies = sorted(seconds * 1000 for _, seconds, _ in run.samples)
    return {
        "rate": rate,
        "sent": sent,
        "failed": run.errors + run.non_2xx,
        "statuses": run.statuses,
        "p50_ms": round(loadgen.percentile(latencies, 0.50), 2),
        "p99_ms": round(loadgen.percentile(latencies, 0.99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else None,
        "over_1s": sum(1 for value in latencies if value > 1000),
        "connections": run.opened,
    }


def slowest_each_second(run: _Recorded, since: float) -> list[float]:
    """The slowest answer (ms) among the requests sent in each second after `since`."""
    slowest: dict[int, float] = {}
    for sent, seconds, _ in run.samples:
        second = int(sent - since)
        slowest[second] = max(slowest.get(second, 0.0), seconds * 1000)
    return [round(slowest.get(s, 0.0), 1) for s in range(max(slowest, default=-1) + 1)]


Loads = dict[str, tuple[list[bytes], float]]


def loads(port: int, ids: list[str], rates: dict[str, float]) -> Loads:
    """The request lists of each kind, and its rate."""
    create = orjson.dumps({"model": MODEL, "messages": MESSAGES, "store": True})
    return {
        "create": ([loadgen.post_request(HOST, port, PATH, create)], rates["create"]),
        "get": ([loadgen.get_request(HOST, port, f"{PATH}/{i}") for i in ids], rates["get"]),
        "list-first": ([loadgen.get_request(HOST, port, f"{PATH}?limit=20")], rates["list"] / 2),
        "list-after": (
            [loadgen.get_request(HOST, port, f"{PATH}?limit=20&after={i}") for i in ids],
            rates["list"] / 2,
        ),
    }


def check(port: int, kinds: Loads) -> None:
    """One request of each kind, answered 200."""
    for kind, (requests, _) in kinds.items():
        status, body = loadgen.run(
            asyncio.wait_for(loadgen.fetch(HOST, port, requests[0]), timeout=30)
        )
        if status != 200:
            raise RuntimeError(f"{kind}: answered {status}: {body[:300]!r}")


async def _mixed(
    port: int, kinds: Loads, seconds: float, stop: asyncio.Event | None
) -> tuple[dict[str, tuple[_Recorded, int]], float]:
    started = time.perf_counter()
    runs = await asyncio.gather(
        *(open_loop(port, requests, rate, seconds, stop) for requests, rate in kinds.values())
    )
    return dict(zip(kinds, runs, strict=True)), started


def mixed(port: int, kinds: Loads, seconds: float) -> dict[str, Any]:
    """Every kind at once, each on its own schedule, for `seconds`."""
    runs, _ = loadgen.run(_mixed(port, kinds, seconds, None))
    return {kind: summary(run, sent, kinds[kind][1]) for kind, (run, sent) in runs.items()}


_PRINTED = re.compile(r"(\d+) completions lost their content and (\d+) records removed")


async def _purge_under_load(
    url: str, port: int, kinds: Loads, limit: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    stop = asyncio.Event()

    async def purge() -> dict[str, Any]:
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chatkeep", "purge", "--database-url", url,
            env=chatkeep_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=limit)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"chatkeep purge ran past {limit:g} s") from None
        finally:
            stop.set()
        seconds = time.perf_counter() - started
        printed = (out + err).decode(errors="replace").strip()
        if proc.returncode != 0:
            raise RuntimeError(f"chatkeep purge exited {proc.returncode}:\n{printed}")
        counts = _PRINTED.search(printed)
        return {
            "seconds": round(seconds, 2),
            "printed": printed.splitlines(),
            "content_removed": int(counts[1]) if counts else None,
            "records_removed": int(counts[2]) if counts else None,
        }

    (runs, started), purged = await asyncio.gather(_mixed(port, kinds, limit, stop), purge())
    during: dict[str, Any] = {
        kind: summary(run, sent, kinds[kind][1]) for kind, (run, sent) in runs.items()
    }
    during["create_slowest_each_second_ms"] = slowest_each_second(runs["create"][0], started)
    return purged, during


def cli_overhead(url: str) -> float:
    """The fastest of three `chatkeep purge --dry-run` runs of a project with nothing:
    Python's start-up, opening the store and checking its schema."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        chatkeep(url, "purge", "--dry-run", "--project", "nothing-here")
        times.append(time.perf_counter() - started)
    return round(min(times), 2)


def server_problems(log_path: Path) -> dict[str, Any]:
    lines = log_path.read_text(errors="replace").splitlines()
    flagged = [
        line
        for line in lines
        if re.search(r"WARNING|ERROR|Traceback", line) and "No API keys" not in line
    ]
    return {"lines": len(lines), "warnings_or_errors": len(flagged), "last": flagged[-5:]}


def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    path = str(folder / "purge.db")
    url = f"sqlite:///{path}"
    keep_days = args.days * (1 - args.share)
    keep = retention_text(keep_days)
    keep_ms = round(keep_days * DAY_MS)
    rates = {"create": args.rate, "get": args.get_rate, "list": args.list_rate}
    result: dict[str, Any] = {"rows": args.rows, "days": args.days, "retention": keep,
                              "cores": os.cpu_count(), "rates": rates}  # fmt: skip
    log(f"filling {path}: {args.rows:,} completions over {args.days:g} days")
    result["fill"] = fill_store.fill(url, args.rows, 1, 1, 20_000, args.days)
    keep_everything(path, args.days)
    ids = kept_ids(path, keep_ms, SAMPLE_IDS)
    server_log = folder / "serve.log"
    with serve(url, server_log) as port:
        kinds = loads(port, ids, rates)
        check(port, kinds)
        log(f"  warm-up {WARMUP_SECONDS:g} s, then the baseline: {args.seconds:g} s")
        mixed(port, kinds, WARMUP_SECONDS)
        result["baseline"] = mixed(port, kinds, args.seconds)
        log(f"  baseline: {json.dumps(result['baseline'])}")
        chatkeep(url, "projects", "set", fill_store.DEFAULT_PROJECT,
                 "--content-retention", keep, "--record-retention", keep)  # fmt: skip
        result["sizes_before"] = file_sizes(path)
        result["expected_records"] = below_cutoff(path, keep_ms)
        log(f"  purge to {keep} ({result['expected_records']:,} records below the cutoff)")
        result["purge"], result["during_purge"] = loadgen.run(
            _purge_under_load(url, port, kinds, args.purge_timeout)
        )
        log(f"  purge: {result['purge']}")
        log(f"  during: {json.dumps(result['during_purge'])}")
        result["sizes_after"] = file_sizes(path)
    result["sizes_after_server_stop"] = file_sizes(path)
    result["cli_overhead_seconds"] = cli_overhead(url)
    result["server_log"] = server_problems(server_log)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=60)
    parser.add_argument("--share", type=float, default=0.1, help="the oldest share to purge")
    parser.add_argument("--rate", type=float, default=100, help="creates per second")
    parser.add_argument("--get-rate", type=float, default=200, help="gets by id per second")
    parser.add_argument("--list-rate", type=float, default=20, help="lists per second")
    parser.add_argument("--seconds", type=float, default=30, help="the baseline's length")
    parser.add_argument("--purge-timeout", type=float, default=900, help="the most a purge runs")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.rows < 1000 or args.days <= 0 or not 0 < args.share < 1:
        parser.error("--rows must be at least 1000, --days above 0, --share between 0 and 1")
    if min(args.rate, args.get_rate, args.list_rate, args.seconds) <= 0:
        parser.error("rates and --seconds must be above 0")
    folder = Path(tempfile.mkdtemp(prefix="chatkeep-sqlite-purge-"))
    try:
        result = measure(args, folder)
    except (OSError, RuntimeError, ValueError, sqlite3.Error, subprocess.SubprocessError) as e:
        log(f"sqlite_purge: {type(e).__name__}: {e}")
        return 1
    finally:
        if args.keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
