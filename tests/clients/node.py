"""Running a check script of the official Node SDK against a server, for the client tests.

Needs `node` and `npm install --prefix tests/clients` (which .ci/run does); skipped with
the reason otherwise, except where CHATKEEP_REQUIRE_NODE_SDK=1 (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent


def _node_sdk_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (HERE / "node_modules" / "openai").is_dir():
        return "the Node SDK is not installed (npm install --prefix tests/clients)"
    return None


def run_node_check(script: str, base_url: str) -> Any:
    """What `script` (beside this file) prints as JSON after calling the server at
    `base_url`; the test fails if it exits non-zero, and skips without the SDK."""
    missing = _node_sdk_missing()
    if missing:
        if os.environ.get("CHATKEEP_REQUIRE_NODE_SDK") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    result = subprocess.run(
        ["node", str(HERE / script), f"{base_url}/v1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
