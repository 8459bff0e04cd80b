"""Every core: `chatkeep serve --workers 1` and `--workers 2` against the bare relay, all on
the same cores.

    python bench/workers.py [--seconds 10] [--connections 64] [--stores off,sqlite,postgres]
                            [--json FILE]

Unlike bench/run.py, which pins the server under test to one core and the load to the
other, here everything shares all of this machine's cores (wrk, the fake upstream, the
server, PostgreSQL), as on a real host where chatkeep runs beside its load balancer: the bare
aiohttp pass-through (one process), then chatkeep with 1 and with 2 workers, for each store
(store off; `store: true` on a SQLite file; on PostgreSQL when reachable), non-streamed. Each
is measured by wrk (one thread, `--connections`, `--seconds` after 2 s of warm-up); the
report is requests per second and the ratio to the bare relay of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pg
from processes import Server, free_port, wait_quiet
from targets import BENCH, chatkeep_env, create_body, write_chatkeep_config
from wrk import run_wrk

PATH = "/v1/chat/completions"


def all_cores() -> str:
    return ",".join(str(core) for core in sorted(os.sched_getaffinity(0)))


@contextlib.contextmanager
def started(server: Server) -> Iterator[Server]:
    with server:
        server.wait_ready(30)
        yield server


def measure(port: int, body: bytes, seconds: int, connections: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{PATH}"
    run_wrk(url, seconds=2, connections=connections, body=body)  # warm-up
    result = run_wrk(url, seconds=seconds, connections=connections, body=body)
    if not result.ok:
        raise RuntimeError(f"{result.errors} errors, {result.non_2xx} non-2xx answers")
    return {"rps": round(result.rps), "p50_ms": result.p50_ms, "p99_ms": result.p99_ms}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--stores", default="off,sqlite,postgres")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    cores = all_cores()
    admin = pg.admin_url()
    stores = args.stores.split(",")
    if "postgres" in stores and pg.reachable(admin) is not None:
        stores.remove("postgres")
    results: dict[str, Any] = {"cores": cores, "seconds": args.seconds, "rows": []}
    with tempfile.TemporaryDirectory(prefix="chatkeep-workers-") as tmp:
        work = Path(tmp)
        up_port = free_port()
        upstream = Server(
            "fake upstream",
            [sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(up_port)],
            core=cores,
            port=up_port,
            log=work / "upstream.log",
        )
        with started(upstream):
            base_url = f"http://127.0.0.1:{up_port}/v1"
            wait_quiet(30)
            port = free_port()
            argv = [sys.executable, str(BENCH / "bare_proxy.py"), "--port", str(port)]
            bare = Server(
                "bare proxy",
                [*argv, "--upstream", base_url],
                core=cores,
                port=port,
                log=work / "bare.log",
            )
            body = create_body(store=False, stream=False)
            with started(bare):
                bare_row = measure(port, body, args.seconds, args.connections)
            results["rows"].append({"target": "bare aiohttp pass-through", **bare_row})
            print(f"bare: {bare_row}", flush=True)
            config = write_chatkeep_config(work / "chatkeep.toml", base_url)
            for store in stores:
                for workers in (1, 2):
                    row = run_chatkeep(work, config, admin, store, workers, cores, args)
                    row["x_bare"] = round(row["rps"] / bare_row["rps"], 2)
                    results["rows"].append(row)
                    print(row, flush=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


def run_chatkeep(
    work: Path, config: Path, admin: str, store: str, workers: int, cores: str, args: Any
) -> dict[str, Any]:
    database = None
    if store == "postgres":
        database = pg.create_database(admin)
        url = pg.database_url(admin, database)
    else:
        path = work / f"chatkeep-{store}-{workers}.db"
        url = f"sqlite:///{path}"
    port = free_port()
    argv = [sys.executable, "-m", "chatkeep", "serve", "--port", str(port)]
    argv += ["--database-url", url, "--config", str(config), "--workers", str(workers)]
    server = Server(
        f"chatkeep {store} x{workers}",
        argv,
        core=cores,
        port=port,
        log=work / f"chatkeep-{store}-{workers}.log",
        env=chatkeep_env(),
        whole_env=True,
    )
    try:
        with started(server):
            time.sleep(1)  # every worker up, not just the first to listen
            body = create_body(store=store != "off", stream=False)
            row = measure(port, body, args.seconds, args.connections)
    finally:
        if database is not None:
            pg.drop_database(admin, database)
    return {"target": f"chatkeep, store {store}", "workers": workers, **row}


if __name__ == "__main__":
    sys.exit(main())
