"""Response ids: OpenAI's shape, strictly increasing, sorting by creation time, and the
floor retention turns "older than" into."""

from __future__ import annotations

import time

from chatkeep.response_ids import ResponseIdGenerator, is_response_id, response_id_floor


def test_ids_have_openais_shape_and_sort_by_creation() -> None:
    ids = ResponseIdGenerator()
    minted = [ids.new_response_id() for _ in range(2000)]
    names = [name for name, _ in minted]
    assert all(is_response_id(name) for name in names)
    assert names == sorted(names) and len(set(names)) == len(names)
    now_ms = time.time_ns() // 1_000_000
    assert all(abs(ms - now_ms) < 60_000 for _, ms in minted)
    assert not is_response_id("resp_123") and not is_response_id(names[0].upper())
    item = ids.item_id("msg")
    assert item.startswith("msg_") and len(item) == 4 + 48


def test_the_floor_separates_ids_by_their_minting_time() -> None:
    ids = ResponseIdGenerator()
    name, ms = ids.new_response_id()
    assert response_id_floor(ms) <= name < response_id_floor(ms + 1)
    assert response_id_floor(-5) == response_id_floor(0) == "resp_" + "0" * 48
