"""`chatkeep serve` without API keys: open on a loopback address, saying so; refused on any
other address unless `--insecure-no-auth` says an open server is meant."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from chatkeep.cli import serve as serve_command
from tests.api.keyed import create_key, run_cli
from tests.api.test_server_process import ServerProcess
from tests.conftest import free_port

REFUSAL = "Refusing to serve on 0.0.0.0 without API keys"


@pytest.fixture
def listens(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Where `chatkeep serve` listened: the host it bound, recorded; uvicorn not run."""
    calls: list[dict[str, Any]] = []
    bind = serve_command._listen

    def listen(host: str, port: int) -> socket.socket:
        calls.append({"host": host})
        return bind(host, 0)

    def run(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            sock.close()

    monkeypatch.setattr(serve_command, "_listen", listen)
    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.delenv("CHATKEEP_HOST", raising=False)
    monkeypatch.delenv("CHATKEEP_INSECURE_NO_AUTH", raising=False)
    return calls


def serve(database_url: str, *args: str) -> Any:
    return run_cli("serve", "--database-url", database_url, *args)


def test_a_public_address_without_keys_is_refused(
    database_url: str, listens: list[dict[str, Any]]
) -> None:
    result = serve(database_url, "--host", "0.0.0.0")
    assert result.exit_code == 1
    assert REFUSAL in result.stderr
    assert "chatkeep keys create --project NAME" in result.stderr
    assert "--insecure-no-auth" in result.stderr
    assert listens == []


def test_the_host_from_the_environment_is_refused_too(
    database_url: str, listens: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATKEEP_HOST", "0.0.0.0")
    result = serve(database_url)
    assert result.exit_code == 1 and REFUSAL in result.stderr
    assert listens == []


def test_a_public_address_with_a_key_starts(
    database_url: str, listens: list[dict[str, Any]]
) -> None:
    create_key(database_url, "alpha")
    result = serve(database_url, "--host", "0.0.0.0")
    assert result.exit_code == 0, result.output
    assert [call["host"] for call in listens] == ["0.0.0.0"]


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_insecure_no_auth_starts_a_public_server_without_keys(
    database_url: str, listens: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "environment":
        monkeypatch.setenv("CHATKEEP_INSECURE_NO_AUTH", "true")
    flag = ["--insecure-no-auth"] if how == "flag" else []
    result = serve(database_url, "--host", "0.0.0.0", *flag)
    assert result.exit_code == 0, result.output
    assert [call["host"] for call in listens] == ["0.0.0.0"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "::1"])
def test_loopback_addresses_start_without_keys(
    database_url: str, listens: list[dict[str, Any]], host: str
) -> None:
    result = serve(database_url, "--host", host)
    assert result.exit_code == 0, result.output
    assert [call["host"] for call in listens] == [host]


def test_a_real_serve_on_a_public_address_exits_before_listening(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATKEEP_")}
    done = subprocess.run(
        [sys.executable, "-m", "chatkeep", "serve", "--host", "0.0.0.0", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,  # a server that listened would never exit by itself
    )
    assert done.returncode == 1
    assert REFUSAL in done.stderr
    assert "Uvicorn running" not in done.stderr + done.stdout


def test_a_loopback_server_without_keys_runs_open_and_says_so(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        with server.client() as client:
            client.models.list()  # any key, or none, is let in
    finally:
        output = server.stop()
    open_lines = [line for line in output.splitlines() if "runs OPEN" in line]
    assert len(open_lines) == 1 and "WARNING" in open_lines[0]
    assert "loopback" in open_lines[0] and "chatkeep keys create" in open_lines[0]
