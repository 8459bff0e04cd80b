"""An export: walk a source, keep the sampled completions, format them, stop at the limit.

Lines come out as encoded bytes, one conversation's lines at a time, so that the HTTP route
and the CLI stream them without ever holding more than one page of the walk.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from chatkeep.export.formats import FORMATTERS
from chatkeep.export.options import ExportOptions
from chatkeep.export.source import PAGE_SIZE, CompletionSource
from chatkeep.protocol.codec import encode_json

# The HTTP route sends lines in chunks of about this many bytes.
CHUNK_BYTES = 64 * 1024
_SCALE = float(2**64)


def sampled(seed: int, completion_id: str, rate: float) -> bool:
    """Whether `completion_id` is in the sample at `rate` for `seed`.

    A hash of the seed and the id, not a random draw: the same seed picks the same
    completions whatever the order, filters or page size of the walk, a larger rate picks
    a superset, and another seed an independent sample.
    """
    if rate >= 1:
        return True
    digest = hashlib.blake2b(f"{seed}:{completion_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE < rate


@dataclass(slots=True)
class ExportCount:
    """What an export did: completions read, sampled out, left out, and lines written."""

    completions: int = 0
    not_sampled: int = 0
    left_out: int = 0  # no line for them: finish_reason, or an input no format can hold
    lines: int = 0


async def export_lines(
    source: CompletionSource, options: ExportOptions, count: ExportCount | None = None
) -> AsyncGenerator[bytes, None]:
    """The export's lines, each conversation's together, newline-terminated."""
    count = count if count is not None else ExportCount()
    formatter = FORMATTERS[options.format]
    limit = options.limit
    query = dataclasses.replace(options.query, limit=PAGE_SIZE)
    async with aclosing(source.walk(query)) as walk:
        async for conversation in walk:
            count.completions += 1
            if not sampled(options.seed, conversation.id, options.sample_rate):
                count.not_sampled += 1
                continue
            lines = formatter(conversation, options.only_stop)
            if not lines:
                count.left_out += 1
                continue
            if limit is not None:
                lines = lines[: limit - count.lines]
            count.lines += len(lines)
            yield b"".join(encode_json(line) + b"\n" for line in lines)
            if limit is not None and count.lines >= limit:
                return


async def export_chunks(
    source: CompletionSource, options: ExportOptions, size: int = CHUNK_BYTES
) -> AsyncIterator[bytes]:
    """`export_lines`, gathered into chunks of about `size` bytes for a streamed response."""
    pending: list[bytes] = []
    held = 0
    async with aclosing(export_lines(source, options)) as lines:
        async for piece in lines:
            pending.append(piece)
            held += len(piece)
            if held >= size:
                yield b"".join(pending)
                pending, held = [], 0
    if pending:
        yield b"".join(pending)
