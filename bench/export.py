"""Export at scale: rows per second and peak memory of `chatkeep export` on a filled store.

    python bench/export.py [--rows N] [--engines sqlite,postgres] [--formats F,...]
                           [--database-url URL] [--json FILE]

Fills a fresh store with N synthetic completions (bench/fill_store.py, one project), then
runs `python -m chatkeep export --format F --database-url URL` once per format, its
output counted and thrown away, as a child process of its own: wall time and completions
per second are that process's, start-up included; peak RSS is its `VmHWM`, read from
/proc while it runs (`ru_maxrss` would not do: Linux carries the forking parent's peak
into a child's). Each format also runs with `--limit N/10`, so the table shows whether
memory grows with rows (it should not: the walk holds one page). The fill runs as a
process of its own too. `--database-url` exports an existing store instead of filling one.

SQLite is filled in a temporary folder and PostgreSQL in a throwaway database
(`chatkeep_bench_export_*`, at BENCH_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432),
both removed at the end. 1,000,000 rows take about 5 GB of disk on SQLite and minutes to
fill. Smoke: `--rows 2000`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pg

FORMATS = ("jsonl", "openai-finetune", "openai-evals")


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set so far (`VmHWM`), in KiB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def run_export(url: str, export_format: str, limit: int | None) -> dict[str, Any]:
    """One `chatkeep export` process: its seconds, peak RSS and lines written."""
    command = [sys.executable, "-m", "chatkeep", "export", "-f", export_format]
    command += ["--database-url", url] + (["--limit", str(limit)] if limit else [])
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peaks = [0]

    def watch() -> None:  # VmHWM only grows: the last reading before exit is the peak
        while child.poll() is None:
            peaks.append(peak_rss_kib(child.pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    lines = 0
    assert child.stdout is not None
    for chunk in iter(lambda: child.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
        lines += chunk.count(b"\n")
    watcher.join()
    peak = max(peaks)
    if child.wait() != 0:
        raise RuntimeError(f"export failed: {' '.join(command)}")
    seconds = time.perf_counter() - started
    return {
        "format": export_format,
        "limit": limit,
        "lines": lines,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak / 1024, 1),
    }


def fill(url: str, rows: int) -> None:
    """bench/fill_store.py in a process of its own (its 1 GiB page cache stays there)."""
    command = [sys.executable, str(Path(__file__).parent / "fill_store.py")]
    args = [*command, "--database-url", url, "--count", str(rows)]
    subprocess.run(args, check=True, stdout=sys.stderr)  # stdout is the table's


def measure(url: str, formats: list[str]) -> tuple[int, list[dict[str, Any]]]:
    """Each format on the whole store, then on a tenth of it; and the store's size (read
    off the whole jsonl export, which has a line per completion: it runs first)."""
    ordered = sorted(formats, key=lambda f: f != "jsonl")
    rows = 0 if ordered[0] == "jsonl" else run_export(url, "jsonl", None)["lines"]
    results = []
    for export_format in ordered:
        for tenth in (False, True):
            result = run_export(url, export_format, max(rows // 10, 1) if tenth else None)
            if export_format == "jsonl" and not tenth:
                rows = result["lines"]
            result["completions"] = min(result["limit"] or rows, rows)
            result["completions_per_second"] = round(result["completions"] / result["seconds"])
            print(
                f"  {export_format:16} {result['completions']:>10,} completions  "
                f"{result['seconds']:>8} s  {result['completions_per_second']:>8,}/s  "
                f"peak RSS {result['peak_rss_mib']} MiB",
                file=sys.stderr,
            )
            results.append(result)
    return rows, results


def bench_engine(engine: str, rows: int, formats: list[str]) -> dict[str, Any]:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory(prefix="chatkeep-bench-export-") as folder:
            url = f"sqlite:///{folder}/export.db"
            fill(url, rows)
            counted, runs = measure(url, formats)
            return {"engine": engine, "rows": counted, "runs": runs}
    admin = pg.admin_url()
    problem = pg.reachable(admin)
    if problem:
        raise RuntimeError(f"PostgreSQL unreachable: {problem}")
    name = pg.create_database(admin, prefix="chatkeep_bench_export")
    try:
        url = pg.database_url(admin, name)
        fill(url, rows)
        counted, runs = measure(url, formats)
        return {"engine": engine, "rows": counted, "runs": runs}
    finally:
        pg.drop_database(admin, name)


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| store | format | completions | lines | seconds | completions/s | peak RSS MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for run in result["runs"]:
            cells = [result["engine"], run["format"], f"{run['completions']:,}",
                     f"{run['lines']:,}", run["seconds"], f"{run['completions_per_second']:,}",
                     run["peak_rss_mib"]]  # fmt: skip
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure chatkeep export at scale.")
    parser.add_argument("--rows", type=int, default=1_000_000, help="completions to fill")
    parser.add_argument("--engines", default="sqlite", help="sqlite,postgres")
    parser.add_argument("--formats", default="jsonl,openai-finetune", help=",".join(FORMATS))
    parser.add_argument("--database-url", help="export this existing store instead of filling")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    formats = [f for f in args.formats.split(",") if f]
    if args.rows < 1 or any(f not in FORMATS for f in formats):
        parser.error(f"--rows must be at least 1; formats are {', '.join(FORMATS)}")
    results = []
    if args.database_url:
        engine = "sqlite" if args.database_url.startswith("sqlite") else "postgres"
        rows, runs = measure(args.database_url, formats)
        results.append({"engine": engine, "rows": rows, "runs": runs})
    else:
        for engine in [e for e in args.engines.split(",") if e]:
            results.append(bench_engine(engine, args.rows, formats))
    print(markdown(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
