"""The official Node SDK against a real server: every stored-completions call works.

Needs the Node SDK (`tests/clients/node.py`).
"""

from __future__ import annotations

from tests.clients.node import run_node_check


def test_node_sdk_round_trip(base_url: str) -> None:
    seen = run_node_check("sdk_check.mjs", base_url)
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
