"""The export walk without a store: it stops reading at the limit (never the whole source),
samples by seed as documented, and leaves out what no line can hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from chatkeep.export.options import ExportOptions
from chatkeep.export.source import PAGE_SIZE, Conversation
from chatkeep.export.walk import ExportCount, export_chunks, export_lines, sampled
from chatkeep.protocol.queries import ListQuery


def conversation(n: int, finish_reason: str = "stop", **message: Any) -> Conversation:
    completion = {
        "id": f"chatcmpl-{n:029d}",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"answer {n}"},
                "finish_reason": finish_reason,
            }
        ],
    }
    asked = {"role": "user", "content": f"question {n}", "content_parts": None, **message}
    return Conversation(completion, [asked])


class EndlessSource:
    """Conversations without end, read a page at a time; counts what it was asked for."""

    def __init__(self) -> None:
        self.read = 0
        self.closed = False
        self.page_sizes: list[int] = []

    async def walk(self, query: ListQuery) -> AsyncGenerator[Conversation, None]:
        self.page_sizes.append(query.limit)
        try:
            while True:
                self.read += 1
                yield conversation(self.read)
        finally:
            self.closed = True

    async def conversation(self, completion_id: str) -> Conversation | None:
        return None


async def _collect(source: Any, options: ExportOptions, count: ExportCount) -> list[Any]:
    return [
        orjson.loads(line)
        async for piece in export_lines(source, options, count)
        for line in piece.splitlines()
    ]


def test_the_walk_stops_at_the_limit_and_closes_the_source() -> None:
    source, count = EndlessSource(), ExportCount()
    lines = asyncio.run(_collect(source, ExportOptions("openai-finetune", limit=5), count))
    assert len(lines) == 5 and count.lines == 5
    assert source.read == 5 and source.closed
    assert source.page_sizes == [PAGE_SIZE]  # pages of the walk's size, not the list's 20


def test_chunks_gather_lines_without_holding_the_export() -> None:
    source = EndlessSource()

    async def first_chunk() -> bytes:
        chunks = export_chunks(source, ExportOptions("jsonl", limit=10_000), size=4096)
        try:
            return await anext(chunks)
        finally:
            await chunks.aclose()

    chunk = asyncio.run(first_chunk())
    assert 4096 <= len(chunk) < 8192 and chunk.endswith(b"\n")
    assert source.read < 100 and source.closed  # read as far as the chunk, no further


class ListSource(EndlessSource):
    def __init__(self, items: list[Conversation]) -> None:
        super().__init__()
        self.items = items

    async def walk(self, query: ListQuery) -> AsyncGenerator[Conversation, None]:
        for item in self.items:
            yield item


def test_what_no_line_can_hold_is_left_out_and_counted() -> None:
    items = [
        conversation(1),
        conversation(2, "length"),
        conversation(3, content=None, content_parts=[]),  # an audio-only message
        conversation(4, role="developer"),
    ]
    count = ExportCount()
    options = ExportOptions("openai-finetune", only_stop=True)
    lines = asyncio.run(_collect(ListSource(items), options, count))
    assert [line["messages"][0] for line in lines] == [
        {"role": "user", "content": "question 1"},
        {"role": "system", "content": "question 4"},
    ]
    assert (count.completions, count.left_out, count.lines) == (4, 2, 2)
    everything = asyncio.run(_collect(ListSource(items), ExportOptions("jsonl"), ExportCount()))
    assert len(everything) == 4  # the stored objects carry what they hold, whatever it is


def test_sampling_is_a_stable_share_for_each_seed() -> None:
    ids = [f"chatcmpl-{n:029d}" for n in range(20_000)]
    tenth = {i for i in ids if sampled(1, i, 0.1)}
    assert 1_800 <= len(tenth) <= 2_200
    assert tenth <= {i for i in ids if sampled(1, i, 0.3)}
    other = {i for i in ids if sampled(2, i, 0.1)}
    assert len(tenth & other) < 400  # about a tenth of a tenth: independent
    assert all(sampled(5, i, 1.0) for i in ids[:100])
    count = ExportCount()
    options = ExportOptions("jsonl", sample_rate=0.1, seed=1)
    lines = asyncio.run(_collect(ListSource([conversation(n) for n in range(500)]), options, count))
    assert count.not_sampled + count.lines == 500
    assert {line["id"] for line in lines} == {
        f"chatcmpl-{n:029d}" for n in range(500) if sampled(1, f"chatcmpl-{n:029d}", 0.1)
    }
