"""JSON encoding and decoding of wire bodies.

orjson on the hot path. A body holding an integer literal of 19 or more digits goes to the
standard library instead: orjson turns integers outside 64 bits into doubles, silently
losing their value, while the standard library keeps every integer exact, so validation can
name such a `seed` for what it is. NaN, Infinity and numbers that overflow a double are not
accepted either way.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from chatkeep.errors import InvalidRequestError

INVALID_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)


# Every integer orjson may not keep exact has at least 19 digits (int64 spans 19).
_LONG_INTEGER = re.compile(rb"\d{19}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows a double")
    return value


def decode_json(body: bytes) -> Any:
    """Decode a request body, raising a 400 `InvalidRequestError` when it is not JSON."""
    try:
        if _LONG_INTEGER.search(body) is None:
            return orjson.loads(body)
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # orjson.JSONDecodeError and json.JSONDecodeError are both ValueErrors.
        raise InvalidRequestError(INVALID_JSON_MESSAGE) from None


def encode_json(value: Any) -> bytes:
    """Encode a response body; falls back to the standard library for integers over 64 bits."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
