"""Decoding an upstream's event stream: the usual shape is cut out directly, anything else
takes the WHATWG rules, and both give the same events however the bytes arrive."""

from __future__ import annotations

import random

import pytest

from chatkeep.protocol.sse import SSEDecoder

# (wire bytes, the data it dispatches)
PIECES: list[tuple[bytes, list[bytes]]] = [
    (b'data: {"a":1}\n\n', [b'{"a":1}']),
    (b"data: [DONE]\n\n", [b"[DONE]"]),
    (b"data:no-space\n\n", [b"no-space"]),
    (b"data:  two spaces\n\n", [b" two spaces"]),
    (b": a comment\n\n", []),
    (b"data: \n\n", []),  # empty data: not dispatched
    (b"data\n\n", []),
    (b"data: line one\ndata: line two\n\n", [b"line one\nline two"]),
    (b"event: message\ndata: with a field\n\n", [b"with a field"]),
    (b"id: 7\nretry: 10\ndata: x\n\n", [b"x"]),
    (b"data: crlf\r\n\r\n", [b"crlf"]),
    (b"data: cr\r\r", [b"cr"]),
    (b"\n\n", []),
    (b"data: \xe2\x82\xac euro\n\n", [b"\xe2\x82\xac euro"]),
]


def _decode(wire: bytes, cuts: list[int]) -> list[bytes]:
    decoder, events, start = SSEDecoder(), [], 0
    for cut in [*cuts, len(wire)]:
        events += decoder.feed(wire[start:cut])
        start = cut
    return events


@pytest.mark.parametrize("seed", range(200))
def test_any_stream_in_any_reads_gives_its_events(seed: int) -> None:
    rng = random.Random(seed)
    chosen = [rng.choice(PIECES) for _ in range(rng.randint(1, 12))]
    wire = b"".join(piece for piece, _ in chosen)
    expected = [event for _, events in chosen for event in events]
    assert _decode(wire, []) == expected  # one read
    cuts = sorted(rng.sample(range(1, len(wire)), min(len(wire) - 1, rng.randint(1, 6))))
    assert _decode(wire, cuts) == expected  # reads cut anywhere, CRLFs included
    assert _decode(wire, list(range(1, len(wire)))) == expected  # a byte at a time


def test_an_unfinished_event_waits_for_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a":1}\n\ndata: {"b"') == [b'{"a":1}']
    assert decoder.feed(b":2}\n") == []
    assert decoder.feed(b"\ndata: [DONE]\n\n") == [b'{"b":2}', b"[DONE]"]
