"""Throughput at a fixed concurrency, measured with wrk (a C load generator from Debian).

Each run writes a small Lua script: a fixed POST body (wrk builds the request once), or a
file of GET paths picked at random per request. The script's `done` hook writes wrk's
counts and latency percentiles as JSON, which is all this module reads back.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  local out = io.open(os.getenv("BENCH_WRK_OUT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
  out:close()
end
"""
_POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
"""
_PATHS = """
local paths = {}
init = function(args)
  for line in io.lines(os.getenv("BENCH_WRK_PATHS")) do paths[#paths + 1] = line end
  math.randomseed(os.time())
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """What one wrk run counted. Errors: socket errors, non-2xx answers and timeouts."""

    requests: int
    duration_s: float
    errors: int
    non_2xx: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> bool:
        """At most 0.1% of requests failed (a few are cut off when the window closes)."""
        return self.requests > 0 and (self.errors + self.non_2xx) <= self.requests / 1000


def run_wrk(
    url: str,
    *,
    seconds: int,
    connections: int = 64,
    body: bytes | None = None,
    paths: list[str] | None = None,
    timeout_s: int = 10,
) -> WrkResult:
    """Run wrk for `seconds` (whole seconds: wrk takes no less) on one thread.

    `body`: POST it to `url`. `paths`: GET one of them at random per request.
    """
    if body is not None and paths is not None:
        raise ValueError("give either a body to POST or paths to GET, not both")
    with tempfile.TemporaryDirectory(prefix="chatkeep-wrk-") as tmp:
        script, out = Path(tmp, "script.lua"), Path(tmp, "out.json")
        env = {**os.environ, "BENCH_WRK_OUT": str(out)}
        if body is not None:
            if b"]==]" in body:
                raise ValueError("the body must not contain ]==]")
            script.write_text(_POST.replace("{body}", body.decode()) + _DONE)
        elif paths:
            path_file = Path(tmp, "paths.txt")
            path_file.write_text("\n".join(paths) + "\n")
            env["BENCH_WRK_PATHS"] = str(path_file)
            script.write_text(_PATHS + _DONE)
        else:
            raise ValueError("give a body to POST or paths to GET")
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, seconds)}s",
            f"--timeout={timeout_s}s",
            "-s",
            str(script),
            url,
        ]
        completed = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=seconds + timeout_s + 30
        )
        if completed.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
        raw = json.loads(out.read_text())
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        non_2xx=raw["status"],
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )
