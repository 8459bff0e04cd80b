"""The results: the issue's targets checked as ratios, written as JSON and as Markdown.

The JSON keeps every figure measured; the Markdown is the table pasted into
bench/README.md (`python bench/run.py --update-readme` does the pasting).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"

Row = dict[str, Any]


def _find(rows: Iterable[Row], **match: Any) -> Row | None:
    for row in rows:
        if all(row.get(key) == value for key, value in match.items()):
            return row
    return None


def _rps(gateway: list[Row], target: str, mode: str) -> float | None:
    row = _find(gateway, target=target, mode=mode)
    return row["rps"] if row and row.get("rps") and not row.get("error") else None


def _ratio_check(
    name: str, gateway: list[Row], target: str, mode: str, base: str, required: float
) -> Row:
    value, reference = _rps(gateway, target, mode), _rps(gateway, base, mode)
    ratio = value / reference if value is not None and reference else None
    return {
        "name": name,
        "measured": ratio,
        "required": required,
        "unit": "x",
        "met": None if ratio is None else ratio >= required,
    }


def _latency_check(name: str, reads: list[Row], store: str, query: str, limit_ms: float) -> Row:
    row = _find(reads, store=store, query=query)
    p99 = row["p99_ms"] if row and not row.get("error") else None
    return {
        "name": name,
        "measured": p99,
        "required": limit_ms,
        "unit": "ms",
        "met": None if p99 is None else p99 < limit_ms,
    }


def _added_latency_check(name: str, gateway: list[Row], target: str, mode: str) -> Row:
    """p50 at the fixed rate, over the bare relay's (same rate, same run)."""
    rows = [_find(gateway, target=key, mode=mode) for key in (target, "bare")]
    p50s = [row.get("p50_ms") if row and not row.get("error") else None for row in rows]
    added = p50s[0] - p50s[1] if None not in p50s else None  # type: ignore[operator]
    return {
        "name": name,
        "measured": added,
        "required": ADDED_P50_MS,
        "unit": "ms",
        "met": None if added is None else added <= ADDED_P50_MS,
    }


# The relay's targets (issue 14): throughput as a share of the bare relay's, and the p50
# added at the fixed rate.
RELAY_TARGETS = (
    ("store off vs bare", "chatkeep", "non-streamed", 0.75),
    ("store SQLite vs bare", "chatkeep-sqlite", "non-streamed", 0.7),
    ("store PostgreSQL vs bare", "chatkeep-postgres", "non-streamed", 0.65),
    ("streamed, store off vs bare", "chatkeep", "streamed", 0.65),
    ("streamed, store SQLite vs bare", "chatkeep-sqlite", "streamed", 0.5),
)
ADDED_P50_MS = 0.3


def evaluate(results: dict[str, Any]) -> list[Row]:
    """The issues' targets, each measured (None when its run was skipped or failed)."""
    gateway, reads = results.get("gateway", []), results.get("reads", [])
    plain = "non-streamed"
    checks = [
        _ratio_check(name, gateway, target, mode, "bare", required)
        for name, target, mode, required in RELAY_TARGETS
    ]
    checks += [
        _added_latency_check(
            f"added p50 at the fixed rate, {mode}, store off", gateway, "chatkeep", mode
        )
        for mode in ("non-streamed", "streamed")
    ]
    checks += [
        _ratio_check("store off vs LiteLLM", gateway, "chatkeep", plain, "litellm", 30),
        _ratio_check("store SQLite vs LiteLLM", gateway, "chatkeep-sqlite", plain, "litellm", 30),
    ]
    for store in ("sqlite", "postgres"):
        checks.append(_latency_check(f"get by id p99, {store}", reads, store, "get", 5.0))
        checks.append(
            _latency_check(f"list, 2-key filter p99, {store}", reads, store, "list-filter", 20.0)
        )
    return checks


def failures(results: dict[str, Any]) -> list[str]:
    """Every run that did not complete, in one line each."""
    found = [
        f"{row['label']} {row.get('mode', 'memory')}: {row['error']}"
        for row in results.get("gateway", []) + results.get("memory", [])
        if row.get("error")
    ]
    found += [
        f"reads {row['store']} {row['query']}: {row['error']}"
        for row in results.get("reads", [])
        if row.get("error")
    ]
    found += [
        f"read_latency.py on {store}: {value['error']}"
        for store, value in results.get("read_latency", {}).items()
        if "error" in value
    ]
    return [failure.replace("\n", " ") for failure in found]


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _gateway_table(results: dict[str, Any]) -> list[str]:
    gateway = results.get("gateway", [])
    lines = [
        "| target | mode | req/s @ 64 conns | × bare | × LiteLLM | server CPU µs/req "
        "| DB CPU µs/req | p50 ms | p99 ms | at req/s | load core busy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in gateway:
        bare, litellm = _rps(gateway, "bare", row["mode"]), _rps(gateway, "litellm", row["mode"])
        rps = row.get("rps") if not row.get("error") else None
        lines.append(
            f"| {row['label']} | {row['mode']} | {_num(rps)} "
            f"| {_num(rps / bare if rps and bare else None, 2)} "
            f"| {_num(rps / litellm if rps and litellm else None, 1)} "
            f"| {_num(row.get('cpu_us_per_request'))} | {_num(row.get('db_cpu_us_per_request'))} "
            f"| {_num(row.get('p50_ms'), 2)} | {_num(row.get('p99_ms'), 2)} "
            f"| {_num(row.get('rate'))} | {_pct(row.get('load_core_busy'))} |"
        )
    return lines


def _arrow(before: float | None, after: float | None, digits: int) -> str:
    return f"{_num(before, digits)} → {_num(after, digits)}"


def _before_after(results: dict[str, Any]) -> list[str]:
    """`--baseline`: each pair measured back to back in this run, before → after."""
    base = results["versions"]["baseline"]
    same = " (src/ is the same in both: the differences are noise)" if base["same_src"] else ""
    after = results["versions"]["chatkeep"]
    lines = [
        f"Before → after: before is chatkeep at {base['rev']} ({base['commit'][:7]}), run "
        f"from a git worktree; after is the working tree, chatkeep {after}"
        f"{same}. Each pair ran back to back, before first:",
        "",
        "| target | mode | × bare, before → after | req/s, before → after | after/before "
        "| server CPU µs/req, before → after | after/before | DB CPU µs/req, before → after |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for pair in results["before_after"]:
        db = pair["before_db_cpu_us"], pair["after_db_cpu_us"]
        lines.append(
            f"| {pair['label']} | {pair['mode']} "
            f"| {_arrow(pair['before_x_bare'], pair['after_x_bare'], 2)} "
            f"| {_arrow(pair['before_rps'], pair['after_rps'], 0)} "
            f"| {_num(pair['rps_after_over_before'], 2)} "
            f"| {_arrow(pair['before_cpu_us'], pair['after_cpu_us'], 0)} "
            f"| {_num(pair['cpu_after_over_before'], 2)} "
            f"| {_arrow(*db, 0) if any(db) else '–'} |"
        )
    return lines


def _targets_table(results: dict[str, Any]) -> list[str]:
    lines = ["| target | measured | required | met |", "| --- | ---: | ---: | --- |"]
    for check in results.get("targets", []):
        unit = check["unit"]
        # Ratios to three places: a target is met or not on the exact figure.
        places = 3 if unit == "x" else 2
        measured = _num(check["measured"], places) + (f" {unit}" if check["measured"] else "")
        bound = "≥" if unit == "x" else "≤" if check["name"].startswith("added") else "<"
        met = {True: "yes", False: "**no**", None: "not measured"}[check["met"]]
        lines.append(
            f"| {check['name']} | {measured} | {bound} {_num(check['required'], 2)} {unit} "
            f"| {met} |"
        )
    return lines


def _reads_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| store | query | req/s @ 64 conns | server CPU µs/req | p50 ms | p99 ms | at req/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results.get("reads", []):
        if row.get("error"):
            lines.append(f"| {row['store']} | {row['query']} | failed: {row['error'][:80]} |||||")
            continue
        lines.append(
            f"| {row['store']} | {row['query']} | {_num(row.get('rps'))} "
            f"| {_num(row.get('cpu_us_per_request'))} | {_num(row.get('p50_ms'), 2)} "
            f"| {_num(row.get('p99_ms'), 2)} | {_num(row.get('rate'))} |"
        )
    return lines


def _read_latency_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| store | query | p50 ms | p99 ms | max ms | req/s |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for store, value in results.get("read_latency", {}).items():
        for query, row in value.get("queries", {}).items():
            lines.append(
                f"| {store} | {query} | {row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} "
                f"| {row['requests_per_second']} |"
            )
    return lines


def _memory_table(results: dict[str, Any]) -> list[str]:
    lines = ["| target | requests | RSS MiB along the run |", "| --- | ---: | --- |"]
    for row in results.get("memory", []):
        points = ", ".join(f"{mib:.1f} after {count:,}" for count, mib in row["rss_mib"])
        lines.append(f"| {row['label']} | {row['requests']:,} | {points or row.get('error')} |")
    return lines


def _fill_note(row: Row) -> str:
    how = "reused from the cache" if row.get("cached_store") else f"{_num(row['fill_s'])} s"
    return f"{row['store']} {how}"


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    plan = results["plan"]
    lines = [
        f"### {results['mode'].capitalize()} run of {results['date']}",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory']}, "
        f"{machine['os']}, kernel {machine['kernel']}, Python {machine['python']}, "
        f"{machine['wrk']}. chatkeep {results['versions']['chatkeep']}, LiteLLM "
        f"{results['versions'].get('litellm', '–')}. Server under test pinned to core "
        f"{plan['server_core']}; wrk, the rate generator, the fake upstream (and PostgreSQL's "
        f"backends) to core {plan['load_core']}. Windows: {plan['window_s']} s at 64 "
        f"connections after {plan['warmup_s']} s of warm-up; latency over {plan['rate_s']} s "
        f"at a fixed rate. Suite wall time {results['wall_s']:.0f} s.",
        "",
        "Targets (ratios of requests per second measured in this run):",
        "",
        *_targets_table(results),
        "",
        "Gateway overhead (fake upstream: 20-chunk streams; CPU is the server process's):",
        "",
        *_gateway_table(results),
    ]
    if results.get("before_after"):
        lines += ["", *_before_after(results)]
    busy = [
        f"{row['label']} {row['background_busy']:.0%}"
        for row in results.get("gateway", [])
        if row["mode"] == "non-streamed" and (row.get("background_busy") or 0) > 0.15
    ]
    if busy:
        lines += ["", f"Other work kept a core busy when these targets started: {', '.join(busy)}."]
    if results.get("reads"):
        fills = sorted({_fill_note(row) for row in results["reads"] if "fill_s" in row})
        lines += [
            "",
            f"Reads with {results.get('stored_rows', 0):,} stored completions "
            f"(filled by bench/fill_store.py: {', '.join(fills)}):",
            "",
        ]
        lines += _reads_table(results)
    if any("queries" in value for value in results.get("read_latency", {}).values()):
        lines += [
            "",
            "bench/read_latency.py on the same stores (closed loop, 4 connections, "
            "its own server on either core):",
            "",
            *_read_latency_table(results),
        ]
    if results.get("memory"):
        lines += ["", "Memory (non-streamed requests):", "", *_memory_table(results)]
    if results.get("failures"):
        lines += ["", "Failures:", "", *(f"- {failure}" for failure in results["failures"])]
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], out_dir: Path, stamp: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stamp}.json", out_dir / f"{stamp}.md"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def update_readme(readme: Path, table: str) -> None:
    """Replace what lies between the results markers of bench/README.md with `table`."""
    text = readme.read_text()
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {README_START} ... {README_END} block")
    block = f"{README_START}\n{table}{README_END}"
    readme.write_text(pattern.sub(lambda _: block, text))
