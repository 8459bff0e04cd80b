"""What `chatkeep serve` says at start-up: a taken port in one line and nothing else, the
server's URL in a form a browser takes (IPv6 in brackets), the database and config file."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from chatkeep.cli.main import cli
from chatkeep.cli.serve import _url


def test_a_port_in_use_is_said_once_and_nothing_claims_to_serve(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        url = f"sqlite:///{tmp_path / 'chatkeep.db'}"
        result = CliRunner().invoke(cli, ["serve", "--port", str(port), "--database-url", url])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: Port {port} is already in use on 127.0.0.1 (http://127.0.0.1:{port}): stop "
        "what holds it, or pass --port (CHATKEEP_PORT)."
    )


def test_urls_put_ipv6_addresses_in_brackets() -> None:
    assert _url("::1", 8000) == "http://[::1]:8000"
    assert _url("::", 80) == "http://[::]:80"
    assert _url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert _url("localhost", 8000) == "http://localhost:8000"


def test_start_up_names_url_database_and_config(tmp_path: Path) -> None:
    """A real process on an ephemeral port: the line names what it bound, by absolute path."""
    command = [sys.executable, "-m", "chatkeep", "serve", "--port", "0"]
    command += ["--database-url", "sqlite:///here.db"]
    server = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        line = ""
        while "serving on" not in line and time.monotonic() < deadline:
            line = server.stderr.readline() if server.stderr else ""
        assert "chatkeep serving on http://127.0.0.1:" in line and ":0 " not in line
        assert f"with store SQLite file {tmp_path / 'here.db'}" in line
        assert line.rstrip().endswith("config file: none: the echo model only")
    finally:
        server.terminate()
        server.wait(timeout=20)
