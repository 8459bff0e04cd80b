"""JSON encoding and decoding of wire bodies.

orjson on the hot path; the standard library only as a fallback for what orjson refuses
but JSON allows (integers beyond 64 bits), so such input is validated, not misreported as
malformed JSON. NaN and Infinity are not JSON and are refused either way.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from chatkeep.errors import InvalidRequestError

INVALID_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(body: bytes) -> Any:
    """Decode a request body, raising a 400 `InvalidRequestError` when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequestError(INVALID_JSON_MESSAGE) from None


def encode_json(value: Any) -> bytes:
    """Encode a response body; falls back to the standard library for integers over 64 bits."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
