"""SilenceWatch: one coarse tick times every wait of an upstream, as `asyncio.timeout` would."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import anyio
import pytest

from chatkeep.backends.upstream_body import SilenceWatch, UpstreamSilent

LIMIT = 5.0
T = TypeVar("T")

pytestmark = pytest.mark.anyio


async def waited(watch: SilenceWatch, awaitable: Awaitable[T]) -> T:
    with watch.deadline():
        return await awaitable


async def test_a_wait_past_its_deadline_is_silent_and_never_early() -> None:
    watch = SilenceWatch(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with anyio.fail_after(LIMIT), pytest.raises(UpstreamSilent):
        await waited(watch, asyncio.sleep(3))
    assert loop.time() - started >= 0.2
    # The task is not left cancelled: it goes on awaiting as usual.
    await asyncio.sleep(0.01)


async def test_a_wait_that_ends_in_time_gives_its_value() -> None:
    watch = SilenceWatch(0.2)

    async def answer() -> str:
        await asyncio.sleep(0.05)
        return "ok"

    for _ in range(3):  # longer, together, than one deadline: each wait has its own
        with anyio.fail_after(LIMIT):
            assert await waited(watch, answer()) == "ok"


async def test_only_the_slow_waits_among_many_fire() -> None:
    watch = SilenceWatch(0.2)

    async def one(seconds: float) -> str:
        try:
            await waited(watch, asyncio.sleep(seconds))
        except UpstreamSilent:
            return "silent"
        return "answered"

    with anyio.fail_after(LIMIT):
        results = await asyncio.gather(*(one(0.01 if i % 2 else 2.0) for i in range(20)))
    assert results == ["silent" if i % 2 == 0 else "answered" for i in range(20)]


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    watch = SilenceWatch(0.2)
    task = asyncio.create_task(waited(watch, asyncio.sleep(3)))
    await asyncio.sleep(0.01)
    task.cancel()
    with anyio.fail_after(LIMIT), pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outer_timeout_that_ends_first_is_the_outer_one() -> None:
    watch = SilenceWatch(2.0)
    with anyio.fail_after(LIMIT), pytest.raises(TimeoutError) as info:
        async with asyncio.timeout(0.05):
            await waited(watch, asyncio.sleep(3))
    assert not isinstance(info.value, UpstreamSilent)


async def test_an_error_of_the_awaited_passes_through() -> None:
    watch = SilenceWatch(0.2)

    async def broken() -> None:
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        await waited(watch, broken())


def test_a_watch_outlives_an_event_loop_that_ended_with_waits_in_flight() -> None:
    watch = SilenceWatch(0.2)

    async def abandoned() -> None:
        task = asyncio.create_task(waited(watch, asyncio.sleep(30)))
        await asyncio.sleep(0.01)  # the loop ends with the wait (and its tick) in flight
        del task

    async def timed() -> None:
        with pytest.raises(UpstreamSilent):
            await asyncio.wait_for(waited(watch, asyncio.sleep(30)), LIMIT)

    asyncio.run(abandoned())
    asyncio.run(timed())
