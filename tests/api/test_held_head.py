"""A response's head goes out with its first body bytes, in one write."""

from __future__ import annotations

import asyncio

from chatkeep.http.held_head import HeldHeadTransport


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_the_head_and_the_body_are_one_write_and_later_writes_go_straight_out() -> None:
    async def main() -> list[bytes]:
        raw = _Transport()
        held = HeldHeadTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        held.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert raw.writes == []
        held.write(b"body")
        held.write(b"more")
        await asyncio.sleep(0)  # the scheduled flush finds nothing held
        return raw.writes

    assert asyncio.run(main()) == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"more"]


def test_a_head_with_no_body_yet_goes_out_on_the_loops_next_turn() -> None:
    async def main() -> tuple[list[bytes], list[bytes]]:
        raw = _Transport()
        held = HeldHeadTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        held.write(b"head")
        before = list(raw.writes)
        await asyncio.sleep(0)
        return before, raw.writes

    assert asyncio.run(main()) == ([], [b"head"])


def test_close_writes_what_is_held_first() -> None:
    async def main() -> _Transport:
        raw = _Transport()
        held = HeldHeadTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        held.write(b"head")
        held.close()
        assert held.is_closing()
        return raw

    raw = asyncio.run(main())
    assert raw.writes == [b"head"] and raw.closed


def test_a_head_held_for_a_client_that_left_is_dropped_quietly() -> None:
    async def main() -> _Transport:
        raw = _Transport()
        held = HeldHeadTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        held.write(b"head")
        raw.closed = True  # the connection was lost before the loop's next turn
        await asyncio.sleep(0)  # the scheduled flush: no write to a closed transport
        return raw

    assert asyncio.run(main()).writes == []
