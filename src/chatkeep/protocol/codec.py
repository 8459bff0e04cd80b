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
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows a double")
    return value


def load_json(raw: bytes) -> Any:
    """Decode JSON exactly: orjson, or the standard library where orjson would not keep an
    integer exact. Raises ValueError (or RecursionError) for what is not JSON, including an
    unpaired surrogate escape (`"\\ud800"`), which orjson refuses and the standard library
    would let through as a string no UTF-8 encoder (and so no answer) can carry."""
    if _LONG_INTEGER.search(raw) is None:
        return orjson.loads(raw)
    value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    return refuse_lone_surrogates(raw, value)


def refuse_lone_surrogates(raw: bytes, value: Any) -> Any:
    """`value`, decoded from `raw` by the standard library, unless it holds an unpaired
    surrogate (ValueError). Walks `value` only when `raw` has a surrogate escape at all."""
    if _SURROGATE_ESCAPE.search(raw) is not None:
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ValueError("an unpaired surrogate is not text") from None
    return value


def decode_json(body: bytes) -> Any:
    """Decode a request body, raising a 400 `InvalidRequestError` when it is not JSON."""
    try:
        return load_json(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # orjson.JSONDecodeError and json.JSONDecodeError are both ValueErrors.
        raise InvalidRequestError(INVALID_JSON_MESSAGE) from None


def encode_json(value: Any) -> bytes:
    """Encode a response body; falls back to the standard library for integers over 64 bits."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
