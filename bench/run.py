"""chatkeep's benchmark suite, in one command: `python bench/run.py` (or `--smoke`).

It starts everything it needs on loopback (fake upstream, bare proxy, chatkeep on SQLite
and on a throwaway PostgreSQL database, LiteLLM's proxy), pins the server under test to one
core and the load to another, bounds every run in time, and writes bench/results/<stamp>.md
and .json. `--smoke` runs each step briefly on a small store, skips LiteLLM and the
million-row reads, checks no figures, and fails only when something does not run.
`--baseline REV` adds chatkeep built from REV to the same run, each before its working-tree
twin (baseline.py), and reports before → after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import baseline
import chatkeep
import gateway
import litellm_proxy
import pg
import reads
import report
import system
from processes import BenchError, Server, free_port, wait_quiet
from targets import BENCH, TARGETS, Context, Target, chatkeep_env

FULL = gateway.Plan(
    warmup_s=2,
    window_s=10,
    rate=1000,
    rate_s=3,
    memory_requests=100_000,
    memory_targets=("chatkeep-sqlite",),
)
SMOKE = gateway.Plan(
    warmup_s=0,
    window_s=1,
    rate=200,
    rate_s=0.5,
    memory_requests=3_000,
    memory_targets=("chatkeep-sqlite",),
)
FULL_READS = reads.ReadPlan(
    rows=1_000_000, window_s=3, rate=500, rate_s=3, warmup_s=1, latency_requests=1000, cache=True
)
SMOKE_READS = reads.ReadPlan(
    rows=1_000, window_s=1, rate=100, rate_s=0.5, warmup_s=0, latency_requests=50
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a short run that checks nothing")
    parser.add_argument(
        "--only",
        help="comma-separated target keys (upstream, bare, chatkeep, "
        "chatkeep-sqlite, chatkeep-postgres, litellm, reads; with --baseline also "
        "chatkeep@base, chatkeep-sqlite@base, chatkeep-postgres@base)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run chatkeep as of this git revision (HEAD, a commit id), from a "
        "temporary worktree, each right before its working-tree twin, and report "
        "before → after",
    )
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument("--rows", type=int, help="stored completions for the reads")
    parser.add_argument(
        "--no-store-cache",
        action="store_true",
        help="fill a fresh SQLite store for the reads instead of reusing the cached one",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=5.0,
        help="seconds to wait for other work to leave the cores before each target",
    )
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1)
    parser.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set this in the baseline's servers only; repeat (with --baseline HEAD: a "
        "setting on against off, e.g. OTEL_SDK_DISABLED=true, the same code in both)",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--litellm-venv", type=Path, default=litellm_proxy.DEFAULT_VENV)
    parser.add_argument(
        "--update-readme", action="store_true", help="paste the Markdown table into bench/README.md"
    )
    return parser.parse_args()


def _chatkeep_version() -> str:
    root = BENCH.parent
    try:
        described = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except OSError:
        described = ""
    return f"{chatkeep.__version__} ({described})" if described else chatkeep.__version__


def _postgres(smoke: bool) -> str | None:
    admin = pg.admin_url()
    problem = pg.reachable(admin)
    if problem is None:
        return admin
    message = f"PostgreSQL is not reachable at {admin} ({problem}); its runs are skipped"
    if os.environ.get("CHATKEEP_REQUIRE_POSTGRES") == "1":
        raise BenchError(message.replace("its runs are skipped", "it is required here"))
    print(f"WARNING: {message}", flush=True)
    return None


def _keys(args: argparse.Namespace) -> set[str] | None:
    """The keys `--only` names, checked; None without `--only`."""
    if not args.only:
        return None
    keys = {key.strip() for key in args.only.split(",") if key.strip()}
    known = baseline.valid_keys() | {"reads"}
    if keys - known:
        raise BenchError(
            f"--only: unknown {', '.join(sorted(keys - known))} (known: {', '.join(sorted(known))})"
        )
    twins = sorted(key for key in keys if key.endswith(baseline.SUFFIX))
    if twins and not args.baseline:
        raise BenchError(f"--only {', '.join(twins)}: these need --baseline REV")
    return keys


def _available(args: argparse.Namespace, ctx: Context) -> list[Target]:
    available = []
    for target in TARGETS:
        if target.key == "litellm" and (args.smoke or args.skip_litellm):
            continue
        if target.key == "chatkeep-postgres" and ctx.postgres_admin is None:
            continue
        available.append(target)
    return available


def _selected(
    args: argparse.Namespace,
    ctx: Context,
    keys: set[str] | None,
    stack: contextlib.ExitStack,
    versions: dict[str, Any],
) -> list[Target]:
    """The targets in the order they run; with `--baseline`, its twins checked out."""
    available = _available(args, ctx)
    chosen = [target for target in available if keys is None or target.key in keys]
    if not args.baseline:
        return chosen
    twins_of = baseline.twinned(keys, available, chosen)
    if not twins_of:
        print("WARNING: --baseline, but no chatkeep target is selected", flush=True)
        return chosen
    extra = dict(pair.partition("=")[::2] for pair in args.baseline_env)
    base = stack.enter_context(baseline.checkout(args.baseline, ctx.python, extra))
    if extra:
        versions["baseline_env"] = extra
    current = baseline.imported_from(ctx.python, chatkeep_env())[0].parent
    if current.is_relative_to(base.path):
        raise BenchError(f"the working tree's servers would import the baseline's {current}")
    versions["baseline"] = base.describe()
    versions["imported_from"] = {"after": str(current), "before": str(base.path / "src")}
    print(
        f"baseline {args.baseline} = {base.short} in {base.path}; after: chatkeep from "
        f"{current}" + ("; NOTE: src/ is the same in both" if base.same_src else ""),
        flush=True,
    )
    return baseline.interleave(chosen, twins_of, base)


def _quiet(args: argparse.Namespace) -> float:
    """Let other work on a shared machine finish first (not in smoke runs)."""
    if args.smoke:
        return 0.0
    busiest = wait_quiet(args.quiet_wait)
    if busiest > 0.15:
        print(f"    WARNING: a core is {busiest:.0%} busy with other work", flush=True)
    return busiest


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends the run like Ctrl-C: servers stopped, the baseline's worktree removed."""
    raise SystemExit(128 + signum)


def main() -> int:
    args = _arguments()
    keys = _keys(args)
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    system.require_cores(args.server_core, args.load_core)
    system.ensure_tools()
    # The orchestrator, wrk and the rate generator run on the load core.
    os.sched_setaffinity(0, {args.load_core})
    plan, read_plan = (SMOKE, SMOKE_READS) if args.smoke else (FULL, FULL_READS)
    if args.rows or args.no_store_cache:
        changes = {
            "rows": args.rows or read_plan.rows,
            "cache": read_plan.cache and not args.no_store_cache,
        }
        read_plan = reads.ReadPlan(**{**asdict(read_plan), **changes})
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ("-smoke" if args.smoke else "")
    logs = args.out / f"{stamp}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="chatkeep-bench-"))
    upstream_port = free_port()
    upstream = Server(
        "fake upstream",
        [sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(upstream_port)],
        core=args.load_core,
        port=upstream_port,
        log=logs / "upstream.log",
    )
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "smoke" if args.smoke else "full",
        "machine": system.describe_machine(),
        "versions": {"chatkeep": _chatkeep_version()},
        "plan": {**asdict(plan), "server_core": args.server_core, "load_core": args.load_core},
        "gateway": [],
        "memory": [],
        "reads": [],
        "failures": [],
    }
    stack = contextlib.ExitStack()
    try:
        upstream.wait_ready(10)
        ctx = Context(
            work=work,
            logs=logs,
            server_core=args.server_core,
            load_core=args.load_core,
            upstream_base_url=f"http://127.0.0.1:{upstream_port}/v1",
            postgres_admin=_postgres(args.smoke),
            litellm_venv=args.litellm_venv,
        )
        for target in _selected(args, ctx, keys, stack, results["versions"]):
            print(f"[{time.monotonic() - started:5.0f} s] {target.label}", flush=True)
            background = _quiet(args)
            rows, memory = gateway.measure_target(ctx, plan, target)
            for row in rows:
                row.background_busy = background
            results["gateway"] += [gateway.as_dict(row) for row in rows]
            if memory is not None:
                results["memory"].append(gateway.as_dict(memory))
            if target.key == "litellm":
                results["versions"]["litellm"] = litellm_proxy.version(ctx.litellm_venv)
        if not args.skip_reads and (keys is None or "reads" in keys):
            print(f"[{time.monotonic() - started:5.0f} s] reads", flush=True)
            results["stored_rows"] = read_plan.rows
            results["reads"], results["read_latency"] = reads.measure_reads(ctx, read_plan)
    finally:
        try:
            upstream.stop()
            shutil.rmtree(work, ignore_errors=True)
        finally:
            stack.close()  # removes the baseline's worktree
    results["failures"] = report.failures(results)
    results["targets"] = report.evaluate(results)
    if "baseline" in results["versions"]:
        results["before_after"] = baseline.pairs(results["gateway"])
    results["wall_s"] = time.monotonic() - started
    json_path, md_path = report.write(results, args.out, stamp)
    table = report.markdown(results)
    print(table)
    print(f"written: {md_path} and {json_path}; logs in {logs}")
    if args.update_readme:
        report.update_readme(BENCH / "README.md", table)
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        sys.exit(2)
