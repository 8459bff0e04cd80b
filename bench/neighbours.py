"""What else on the machine takes a core from a measured window, beside the processes under test.

Two neighbours explained the read tail on the bench machines (bench/README.md, "fifth
sitting"):

- **The machine's PID 1.** On these sandboxes it is not an idle init but an agent
  (`process_api`, at nice -10) that, about once a second, goes through every process's
  open files. Its CPU grows with the files PostgreSQL's backends hold open: after the same
  reads, 19 ms a second with 9,117 open (60 days of day leaves, 10 backends) against 6 ms
  with 242 (one table), in bursts of up to 50 ms. Most of it is kernel time, which a server
  at a higher priority does not win back.
- **The kernel's DAMON threads** (`kdamond`), where a reclaim scheme runs: a few ms every
  half second, up to 15 ms at once.

A window reads both before and after (`Neighbours`), and `open_files` counts the files a
set of processes holds, so that a result shows what the machine did beside it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from processes import cpu_seconds


def _run_ns(task_dir: Path) -> int:
    """Nanoseconds a thread has run (the first field of its `schedstat`)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int((task_dir / "schedstat").read_text().split()[0])
    return 0


def init_seconds() -> float:
    """CPU seconds PID 1's threads have run since boot (0 where they cannot be read)."""
    tasks = Path("/proc/1/task")
    with contextlib.suppress(OSError):
        return sum(_run_ns(task) for task in tasks.iterdir()) / 1e9
    return 0.0


def kdamond_seconds() -> float:
    """CPU seconds of the kernel's DAMON threads alive now, since they started."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().startswith("kdamond"):
                    found.append(int(entry))
    return cpu_seconds(found)


def open_files(pids: Sequence[int]) -> int:
    """Open file descriptors of these processes together."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{pid}/fd"))
    return total


@dataclass(frozen=True, slots=True)
class NeighbourUsage:
    """Milliseconds of CPU the neighbours used over one window."""

    init_ms: float
    kdamond_ms: float


class Neighbours:
    """A window: readings at creation, the difference at `close()`. A DAMON thread that
    starts or stops inside the window is counted from when it was read."""

    def __init__(self) -> None:
        self._init, self._kdamond = init_seconds(), kdamond_seconds()

    def close(self) -> NeighbourUsage:
        init = (init_seconds() - self._init) * 1000
        kdamond = max(0.0, kdamond_seconds() - self._kdamond) * 1000
        return NeighbourUsage(round(init, 1), round(kdamond, 1))
