"""`total_timeout` cuts an answer whose next piece is always ready, not only one that waits."""

from __future__ import annotations

import asyncio

import pytest

from chatkeep.backends.upstream_body import AnswerBody, SilenceWatch, UpstreamOverdue


class _Ready:
    """A body with a piece ready on every read, that never ends."""

    def read_nowait(self) -> bytes:
        return b"data: {}\n\n"

    def is_eof(self) -> bool:
        return False

    def at_eof(self) -> bool:
        return False

    async def readany(self) -> bytes:
        return self.read_nowait()


class _Answer:
    status = 200
    content_length = None
    content = _Ready()


def test_a_body_always_ready_is_cut_at_the_exchanges_end() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        watch = SilenceWatch(30.0)
        body = AnswerBody(_Answer(), watch=watch, limit=10**9, end=loop.time() + 0.05)  # type: ignore[arg-type]
        reads = 0
        while True:
            await body.read()
            reads += 1
            await asyncio.sleep(0.001)  # a reader that takes its time with each piece

    with pytest.raises(UpstreamOverdue):
        asyncio.run(main())


def test_without_an_end_a_ready_body_is_read_as_before() -> None:
    async def main() -> bytes:
        body = AnswerBody(_Answer(), watch=SilenceWatch(30.0), limit=10**9)  # type: ignore[arg-type]
        return await body.read()

    assert asyncio.run(main()) == b"data: {}\n\n"
