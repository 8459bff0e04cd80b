"""Before and after in one run: chatkeep at a git revision, measured beside the working tree.

`python bench/run.py --baseline REV` checks REV out into a temporary `git worktree` and adds,
for each chatkeep target selected, a twin (key `<key>@base`) that runs the server from that
checkout: the same `python -m chatkeep serve ...` in the same environment, with
PYTHONPATH=<worktree>/src ahead of the installed (editable) package. That it really imports
the worktree's code is checked before anything is measured. Each twin is measured right
before its working-tree target, with the same plan, so that every pair is compared under
the same conditions. The worktree is removed when the run ends, whatever happens.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from processes import BenchError
from targets import BENCH, TARGETS, Context, Running, Target, chatkeep_env

SUFFIX = "@base"
FILE_TAG = "-base"
CHATKEEP_KEYS = ("chatkeep", "chatkeep-sqlite", "chatkeep-postgres")
REPO = BENCH.parent
# Where `python -m chatkeep` finds the package and its entry point, from a fresh process.
_WHERE = (
    "import importlib.util, chatkeep; "
    "print(chatkeep.__file__); print(importlib.util.find_spec('chatkeep.__main__').origin)"
)


@dataclass(frozen=True)
class Baseline:
    """REV checked out, and the environment its servers run with."""

    rev: str
    commit: str
    path: Path
    env: dict[str, str]
    same_src: bool

    @property
    def short(self) -> str:
        return self.commit[:7]

    def describe(self) -> dict[str, Any]:
        return {"rev": self.rev, "commit": self.commit, "same_src": self.same_src}


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=300
    )


def _resolve(rev: str) -> str:
    if not rev or rev.startswith("-"):
        raise BenchError(f"--baseline {rev!r} is not a git revision")
    found = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0:
        raise BenchError(f"--baseline {rev!r}: no such commit in {REPO}")
    return found.stdout.strip()


def _same_src(commit: str) -> bool:
    """Whether the working tree's src/ (uncommitted changes and new files too) is REV's."""
    changed = _git("diff", "--quiet", commit, "--", "src").returncode != 0
    added = _git("ls-files", "--others", "--exclude-standard", "--", "src").stdout.strip()
    return not changed and not added


def imported_from(python: str, env: dict[str, str]) -> list[Path]:
    """chatkeep's `__init__.py` and `__main__.py` as a server started with `env` finds them."""
    done = subprocess.run(
        [python, "-c", _WHERE], capture_output=True, text=True, env=env, timeout=60
    )
    if done.returncode != 0:
        raise BenchError(f"`{python} -c 'import chatkeep'` failed: {done.stderr.strip()[-500:]}")
    return [Path(line).resolve() for line in done.stdout.split()]


def _verify(python: str, path: Path, env: dict[str, str]) -> None:
    expected = (path / "src" / "chatkeep").resolve()
    found = imported_from(python, env)
    if len(found) != 2 or any(file.parent != expected for file in found):
        raise BenchError(
            f"the baseline's servers would not run the baseline: with PYTHONPATH="
            f"{env.get('PYTHONPATH')} chatkeep imports from {', '.join(map(str, found))}, "
            f"not from {expected}"
        )


def _remove(path: Path) -> None:
    removed = _git("worktree", "remove", "--force", str(path))
    if removed.returncode != 0 or path.exists():
        print(f"WARNING: git worktree remove {path}: {removed.stderr.strip()}", flush=True)
        shutil.rmtree(path, ignore_errors=True)
        _git("worktree", "prune")


@contextlib.contextmanager
def checkout(
    rev: str, python: str = sys.executable, extra: dict[str, str] | None = None
) -> Iterator[Baseline]:
    """REV in a temporary git worktree, checked to be what its servers import; removed after.
    `extra`: variables set in its servers' environment only (`--baseline-env`)."""
    commit = _resolve(rev)
    path = Path(tempfile.mkdtemp(prefix="chatkeep-bench-baseline-"))
    try:
        added = _git("worktree", "add", "--detach", str(path), commit)
        if added.returncode != 0:
            raise BenchError(f"git worktree add {path} {commit}: {added.stderr.strip()}")
        env = {**chatkeep_env(pythonpath=path / "src"), **(extra or {})}
        _verify(python, path, env)
        yield Baseline(rev, commit, path, env, _same_src(commit))
    finally:
        _remove(path)


def twin(target: Target, baseline: Baseline) -> Target:
    """`target` run from the baseline's worktree, under its own key, label, log and files."""

    def start(ctx: Context) -> Running:
        return target.start(replace(ctx, chatkeep_environment=baseline.env, file_tag=FILE_TAG))

    return replace(
        target,
        key=target.key + SUFFIX,
        label=f"{target.label} · before ({baseline.short})",
        start=start,
    )


def after(target: Target) -> Target:
    return replace(target, label=f"{target.label} · after")


def valid_keys() -> set[str]:
    return {target.key for target in TARGETS} | {key + SUFFIX for key in CHATKEEP_KEYS}


def twinned(
    keys: set[str] | None, available: Sequence[Target], chosen: Sequence[Target]
) -> list[Target]:
    """The chatkeep targets whose twins run: those `--only` names with @base (when available
    here), or, when it names none, every chatkeep target chosen."""
    named = {key.removesuffix(SUFFIX) for key in keys or () if key.endswith(SUFFIX)}
    if named:
        return [target for target in available if target.key in named]
    return [target for target in chosen if target.key in CHATKEEP_KEYS]


def interleave(
    chosen: Sequence[Target], twins_of: Sequence[Target], baseline: Baseline
) -> list[Target]:
    """The run's order: each twin right before its working-tree target (relabelled "after")."""
    chosen_keys = {target.key for target in chosen}
    twin_keys = {target.key for target in twins_of}
    order: list[Target] = []
    for target in TARGETS:
        if target.key in twin_keys:
            order.append(twin(target, baseline))
        if target.key in chosen_keys:
            order.append(after(target) if target.key in twin_keys else target)
    return order


def _usable(row: dict[str, Any] | None, field: str) -> float | None:
    if row is None or row.get("error"):
        return None
    value = row.get(field)
    return float(value) if value else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def pairs(gateway: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per twin and mode: before and after, each × bare, and after/before."""

    def find(key: str, mode: str) -> dict[str, Any] | None:
        return next((r for r in gateway if r["target"] == key and r["mode"] == mode), None)

    labels = {target.key: target.label for target in TARGETS}
    found = []
    for row in gateway:
        if not row["target"].endswith(SUFFIX):
            continue
        key, mode = row["target"].removesuffix(SUFFIX), row["mode"]
        current, bare = find(key, mode), find("bare", mode)
        bare_rps = _usable(bare, "rps")
        before_rps, after_rps = _usable(row, "rps"), _usable(current, "rps")
        before_cpu = _usable(row, "cpu_us_per_request")
        after_cpu = _usable(current, "cpu_us_per_request")
        found.append(
            {
                "target": key,
                "label": labels.get(key, key),
                "mode": mode,
                "before_rps": before_rps,
                "after_rps": after_rps,
                "before_x_bare": _ratio(before_rps, bare_rps),
                "after_x_bare": _ratio(after_rps, bare_rps),
                "rps_after_over_before": _ratio(after_rps, before_rps),
                "before_cpu_us": before_cpu,
                "after_cpu_us": after_cpu,
                "cpu_after_over_before": _ratio(after_cpu, before_cpu),
                "before_db_cpu_us": _usable(row, "db_cpu_us_per_request"),
                "after_db_cpu_us": _usable(current, "db_cpu_us_per_request"),
            }
        )
    return found
