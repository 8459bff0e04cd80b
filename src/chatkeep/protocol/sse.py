"""Server-sent events framing of chat completion streams.

Data-only events (`data: <one-line JSON>` and a blank line), never `event:` lines, which
older SDK releases mis-handle; the stream ends with `data: [DONE]`.
"""

from __future__ import annotations

from typing import Any

from chatkeep.protocol.codec import encode_json

DONE_EVENT = b"data: [DONE]\n\n"


def encode_event(payload: Any) -> bytes:
    # orjson never emits raw newlines (they are escaped inside strings), so one line is safe.
    return b"data: " + encode_json(payload) + b"\n\n"
