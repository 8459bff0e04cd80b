"""The official Node SDK against a real server: every stored-completions call works.

Needs `node` and `npm install --prefix tests/clients` (which .ci/run does); skipped with
the reason otherwise, except where CHATKEEP_REQUIRE_NODE_SDK=1 (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _node_sdk_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (HERE / "node_modules" / "openai").is_dir():
        return "the Node SDK is not installed (npm install --prefix tests/clients)"
    return None


def test_node_sdk_round_trip(base_url: str) -> None:
    missing = _node_sdk_missing()
    if missing:
        if os.environ.get("CHATKEEP_REQUIRE_NODE_SDK") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    result = subprocess.run(
        ["node", str(HERE / "sdk_check.mjs"), f"{base_url}/v1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {
        "created": "hello from node",
        "streamed": "hello from node",
        "retrieved": {"sdk": "node"},
        "updated": {"sdk": "node2"},
        "listed": True,
        "paged": True,
        "messages": ["user:hello from node"],
        "deleted": True,
        "afterDelete": 404,
        "badRequest": [400, "temperature"],
    }
