"""Server processes under test: start them pinned to a core, wait for them, read their cost.

CPU time and RSS come from /proc: utime+stime of the process and its descendants (threads
are counted in their process), so a server that forks workers is charged for them too.
Per-core busy time from /proc/stat shows whether the load generator's core kept up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class BenchError(Exception):
    """Something the suite needs did not start or did not answer; the run cannot go on."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces; everything after its ")" is split safely.
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User+system CPU seconds of these processes, with their reaped children's."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = _stat_fields(pid)
            # utime, stime, cutime, cstime are fields 14-17 of /proc/<pid>/stat.
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / CLOCK_TICKS


def cpu_wait_seconds(pids: Sequence[int]) -> float:
    """Seconds the threads of these processes spent ready to run but waiting for a core
    (the second field of each thread's `schedstat`): what other work on their cores cost
    them."""
    waited = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    waited += int((task / "schedstat").read_text().split()[1])
    return waited / 1e9


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident set size of these processes together."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    return total


def core_ticks() -> dict[int, tuple[int, int]]:
    """(busy, total) jiffies of each core since boot."""
    result = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            numbers = [int(value) for value in values]
            idle = numbers[3] + numbers[4]  # idle + iowait
            result[int(name[3:])] = (sum(numbers[:8]) - idle, sum(numbers[:8]))
    return result


def core_busy(
    before: Mapping[int, tuple[int, int]], after: Mapping[int, tuple[int, int]]
) -> dict[int, float]:
    """Busy share of each core between two `core_ticks()` readings."""
    shares = {}
    for core, (busy, total) in after.items():
        busy0, total0 = before.get(core, (0, 0))
        shares[core] = (busy - busy0) / (total - total0) if total > total0 else 0.0
    return shares


def wait_quiet(max_wait_s: float, threshold: float = 0.15, sample_s: float = 0.5) -> float:
    """Wait (up to `max_wait_s`) until no core is busier than `threshold` over `sample_s`.

    On a shared machine other work would land on the cores under test; this returns the
    busiest core's share in the last sample, so that the results can show it.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        before = core_ticks()
        time.sleep(sample_s)
        busiest = max(core_busy(before, core_ticks()).values(), default=0.0)
        if busiest <= threshold or time.monotonic() >= deadline:
            return busiest


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds of the measured processes and busy share of each core over one window."""

    cpu_s: float
    wall_s: float
    busy: dict[int, float]
    wait_s: float = 0.0  # ready to run, waiting for a core (`cpu_wait_seconds`)


class Window:
    """A measured window: readings at creation, the difference at `close()`."""

    def __init__(self, pids: Sequence[int]) -> None:
        self._pids = list(pids)
        self._cpu, self._ticks, self._wall = cpu_seconds(self._pids), core_ticks(), time.monotonic()
        self._wait = cpu_wait_seconds(self._pids)

    def close(self) -> Usage:
        cpu, ticks, wall = cpu_seconds(self._pids), core_ticks(), time.monotonic()
        waited = cpu_wait_seconds(self._pids) - self._wait
        return Usage(cpu - self._cpu, wall - self._wall, core_busy(self._ticks, ticks), waited)


class Server:
    """A process started pinned to one core (or a taskset list of them, "0,1"), logging to
    a file, stopped on exit."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        core: int | str,
        log: Path,
        port: int,
        env: Mapping[str, str] | None = None,
        whole_env: bool = False,
    ) -> None:
        """`env` is added to this process's environment, or is the whole of it (`whole_env`)."""
        self.name = name
        self.port = port
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            ["taskset", "-c", str(core), *argv],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env or {}) if whole_env else {**os.environ, **(env or {})},
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        return descendants(self.pid)

    def wait_ready(self, timeout: float) -> None:
        """Wait until the port accepts connections; fail early if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.process.returncode}; {self.tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise BenchError(f"{self.name} did not listen on port {self.port} within {timeout:g} s")

    def tail(self, lines: int = 15) -> str:
        self._log_file.flush()
        text = self.log.read_text(errors="replace").splitlines()
        return "last log lines:\n" + "\n".join(text[-lines:]) if text else "no log output"

    def window(self, extra_pids: Sequence[int] = ()) -> Window:
        """Start measuring the CPU this server (and `extra_pids`) uses from now on."""
        return Window([*self.pids(), *extra_pids])

    def stop(self, grace: float = 10.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log_file.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
