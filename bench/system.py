"""What the suite needs from the machine: the Debian tools it runs, and a description of it.

wrk (load generator) comes from Debian's `wrk` package and taskset from `util-linux`.
Run as root on Debian or Ubuntu, the suite installs what is missing with apt-get; otherwise
it stops and says what to install.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from processes import BenchError

# executable -> Debian package
TOOLS = {"wrk": "wrk", "taskset": "util-linux"}


def ensure_tools() -> None:
    missing = {tool: package for tool, package in TOOLS.items() if shutil.which(tool) is None}
    if not missing:
        return
    packages = sorted(set(missing.values()))
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BenchError(
            f"missing {', '.join(sorted(missing))}: install the Debian package(s) "
            f"{' '.join(packages)} (sudo apt-get install {' '.join(packages)}), then run again"
        )
    print(f"installing {' '.join(packages)} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env, timeout=600)


def require_cores(*cores: int) -> None:
    available = os.sched_getaffinity(0)
    absent = [core for core in cores if core not in available]
    if absent:
        raise BenchError(
            f"the suite pins the server and the load generator to cores {cores}, but cores "
            f"{absent} are not available here (available: {sorted(available)}); it needs 2"
        )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def _tool_version(argv: list[str]) -> str:
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return "absent"
    first = (completed.stdout or completed.stderr).strip().splitlines()[0]
    return first.split(" Copyright")[0]


def describe_machine() -> dict[str, str]:
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": f"{_memory_gib():.0f} GiB",
        "kernel": platform.release(),
        "os": _os_name(),
        "python": sys.version.split()[0],
        "wrk": _tool_version(["wrk", "-v"]),
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()
