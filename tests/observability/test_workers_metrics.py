"""`/metrics` of `chatkeep serve --workers 2`: every worker's counts, added up, whichever
worker answers the scrape; a worker's counts outlive it; the files go with the server.

As in tests/api/test_workers.py, one worker is stopped (SIGSTOP) while the other serves, so
that each call goes where the test says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from chatkeep.observability.metrics import Metrics
from chatkeep.observability.workers_metrics import WorkerMetricsDir
from tests.api.test_server_process import ServerProcess
from tests.api.test_workers import _only, _wait_for_workers, _workers
from tests.observability.scrape import parse, total

USER = [{"role": "user", "content": "hello from one of two workers"}]
DURATION = "gen_ai_server_request_duration_seconds_count"


def _scrape(server: ServerProcess) -> dict[str, float]:
    text = httpx2.get(f"{server.url}/metrics", timeout=10).text
    samples = parse(text)
    return {
        "creates": total(samples, DURATION, gen_ai_request_model="echo-1"),
        "stored": total(samples, "chatkeep_store_commit_batch_size_sum", store="sqlite"),
        "streams_open": total(samples, "chatkeep_streams_open"),
    }


def _settled(server: ServerProcess, **expected: float) -> None:
    """Scrape (either worker answers) until the counts named are `expected`, for at most
    20 s. A create is measured once its answer is sent, so its client can have the answer
    before the worker counts it, and a worker stopped in between counts it once it goes on."""
    deadline = time.monotonic() + 20
    while True:
        seen = _scrape(server)
        if all(seen[name] == count for name, count in expected.items()):
            return
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)


def test_two_workers_add_up_and_keep_a_dead_workers_counts(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by an earlier run")
    url = f"sqlite:///{tmp_path / 'workers.db'}"
    server = ServerProcess(
        tmp_path,
        "--workers",
        "2",
        "--database-url",
        url,
        # The usage meter's purges and flushes are writes too: none here but the completions.
        settings={
            "CHATKEEP_METRICS_DIR": str(metrics_dir),
            "CHATKEEP_USAGE_RETENTION_DAYS": "0",
            "CHATKEEP_USAGE_FLUSH_SECONDS": "3600",
        },
    )
    try:
        a, b = _wait_for_workers(server, 2)
        assert not (metrics_dir / "counter_1.db").exists()  # emptied at start
        for serving, stopped, count in ((a, b, 2), (b, a, 3)):
            with _only(server, serving, stopped) as client:
                for _ in range(count):
                    client.chat.completions.create(model="echo-1", messages=USER, store=True)
        expected = {"creates": 5, "stored": 5, "streams_open": 0}
        _settled(server, **expected)
        # Each worker answers a scrape with both workers' counts.
        for stopped in (b, a):
            os.kill(stopped, signal.SIGSTOP)
            try:
                seen = _scrape(server)
            finally:
                os.kill(stopped, signal.SIGCONT)
            assert seen == expected
        # A worker's files carry its pid: both wrote their own.
        pids = {int(p.stem.rsplit("_", 1)[1]) for p in metrics_dir.glob("*.db")}
        assert {a, b} <= pids

        os.kill(a, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while a in (now := _workers(server)) or len(now) != 2:
            assert time.monotonic() < deadline, now
            time.sleep(0.05)
        assert _scrape(server)["creates"] == 5  # the dead worker's counts remain
    finally:
        output = server.stop()
    assert "Traceback" not in output, output


def test_the_temporary_metrics_directory_goes_with_the_server(tmp_path: Path) -> None:
    # The server's temporary directory is one of the test's own, so that no other server on
    # the machine (another test worker's) makes or removes a directory where it looks.
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    server = ServerProcess(
        tmp_path,
        "--workers",
        "2",
        "--database-url",
        f"sqlite:///{tmp_path / 'w.db'}",
        settings={"TMPDIR": str(temporary)},
    )
    try:
        _wait_for_workers(server, 2)
        with server.client() as client:
            client.chat.completions.create(model="echo-1", messages=USER)
        made = set(temporary.glob("chatkeep-metrics-*"))
        assert len(made) == 1
        assert any(next(iter(made)).glob("*.db"))
        _settled(server, creates=1)
    finally:
        server.stop()
    assert not next(iter(made)).exists()


WORKER = """
import sys
from pathlib import Path
from chatkeep.observability.metrics import Metrics
from chatkeep.observability.workers_metrics import use_multiprocess_values

path = Path(sys.argv[1])
use_multiprocess_values(path)
metrics = Metrics(multiprocess_dir=path)
metrics.streams_open.inc()  # and then it dies, mid-stream
metrics.http_request("/health", "GET", 200)
"""


def test_a_dead_workers_open_streams_are_dropped_and_its_counts_kept(tmp_path: Path) -> None:
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path)])
    assert worker.wait(timeout=60) == 0
    scraper = Metrics(multiprocess_dir=tmp_path)  # what any other worker's /metrics reads
    before = parse(scraper.exposition().decode())
    assert total(before, "chatkeep_streams_open") == 1
    WorkerMetricsDir(tmp_path, owned=False).worker_died(worker.pid)
    after = parse(scraper.exposition().decode())
    assert total(after, "chatkeep_streams_open") == 0
    assert total(after, "chatkeep_http_requests_total", http_route="/health") == 1
