"""A real `chatkeep serve` process over a socket: the quick start's path, and kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest

from tests.conftest import free_port


class ServerProcess:
    """`chatkeep serve` in `workdir` on a free port, with only the `CHATKEEP_*` settings in
    `settings` (none of the test environment's), started when `/health` answers.

    Its output is read as it comes, by a thread of its own, and kept for `stop()`: unread,
    it would fill the pipe (64 KiB: a line per completion, a traceback per failed
    reconnect), and the server's next log line would block its event loop in `write()`,
    hanging every request to it (what a long-lived server of the scale-out tests met).
    """

    def __init__(self, workdir: Path, *args: str, settings: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATKEEP_")}
        env |= settings or {}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatkeep", "serve", "--port", str(self.port), *args],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._output: list[bytes] = []
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx2.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                output = self.stop()
                raise RuntimeError(f"chatkeep serve did not start:\n{output}")
            time.sleep(0.05)

    def client(self) -> openai.OpenAI:
        # A bounded wait: a request that never ends fails its test in a minute, not in the
        # SDK's default ten.
        return openai.OpenAI(api_key="sk-x", base_url=f"{self.url}/v1", max_retries=0, timeout=60.0)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := os.read(self.proc.stdout.fileno(), 65536):
            self._output.append(chunk)

    def stop(self) -> str:
        """End the server (SIGTERM, then SIGKILL after 15 s); everything it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._drain.join(timeout=10)  # the pipe ends with the process
        return b"".join(self._output).decode(errors="replace")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path)
    yield process
    process.stop()


def test_default_serve_uses_chatkeep_db_in_the_working_directory(
    server: ServerProcess, tmp_path: Path
) -> None:
    with server.client() as client:
        completion = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], store=True
        )
        assert client.chat.completions.retrieve(completion.id).id == completion.id
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hi"
    assert (tmp_path / "chatkeep.db").exists()


def test_acknowledged_completions_survive_kill_9(tmp_path: Path, database_url: str) -> None:
    first = ServerProcess(tmp_path, "--database-url", database_url)
    with first.client() as client:
        ids = [
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": str(i)}], store=True
            ).id
            for i in range(25)
        ]
    first.kill()
    second = ServerProcess(tmp_path, "--database-url", database_url)
    try:
        with second.client() as client:
            assert [c.id for c in client.chat.completions.list(limit=100)] == ids
            assert client.chat.completions.messages.list(ids[-1]).data[0].content == "24"
    finally:
        second.stop()


def test_serve_logs_one_line_per_completion_without_content(
    tmp_path: Path, database_url: str
) -> None:
    process = ServerProcess(tmp_path, "--database-url", database_url)
    with process.client() as client:
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "secret words"}], store=True
        )
    output = process.stop()
    lines = [line for line in output.splitlines() if "completion id=chatcmpl-" in line]
    assert len(lines) == 1 and "model=m" in lines[0] and "backend=echo" in lines[0]
    assert "secret words" not in output
