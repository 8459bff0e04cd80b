"""Pydantic validation errors, worded as OpenAI words its 400s.

`invalid_request` turns the first error of a failed validation into an `InvalidRequestError`
with OpenAI's message, `code` and `param` (written as OpenAI writes it: `messages[0].content`,
`tools[1].function.name`, `stop[2]`). Only the structured fields of an error are read (type,
loc, ctx, input), never its text. The models' own error types come from `protocol.base`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from chatkeep.errors import InvalidRequestError
from chatkeep.protocol.base import (
    ENUM_ERROR,
    RULE_ERROR,
    TAG_PREFIX,
    UNION_ERROR,
    UNKEEPABLE_ERROR,
)

# The only user-chosen strings that reach `loc` are the keys of these top-level maps; no union
# lives inside them, so a key that happens to start with TAG_PREFIX is kept.
_MAP_FIELDS = frozenset({"metadata", "logit_bias"})

Handler = Callable[[str, Any, dict[str, Any]], InvalidRequestError]


def invalid_request(exc: ValidationError) -> InvalidRequestError:
    """The 400 for the first error of a failed validation."""
    return translate_error(exc.errors(include_url=False)[0])


def translate_error(error: ErrorDetails) -> InvalidRequestError:
    kind, loc, value = error["type"], error["loc"], error.get("input")
    ctx: dict[str, Any] = error.get("ctx") or {}
    if len(loc) == 3 and loc[-1] == "[key]" and loc[0] in _MAP_FIELDS:
        return _map_key(kind, str(loc[0]), value, ctx)
    param = param_of(loc)
    if kind in _HANDLERS:
        return _HANDLERS[kind](param, value, ctx)
    if kind in _EXPECTED:
        return _invalid_type(param, _EXPECTED[kind], value)
    # Not raised by the current models; worded generically rather than failing with a 500.
    return InvalidRequestError(
        f"Invalid '{param}': {error['msg']}.", param=param or None, code="invalid_value"
    )


def param_of(loc: Sequence[int | str]) -> str:
    """`("messages", 0, "~user", "content")` → `messages[0].content`."""
    skip_tags = not (loc and loc[0] in _MAP_FIELDS)
    out: list[str] = []
    for item in loc:
        if isinstance(item, int):
            out.append(f"[{item}]")
        elif not (skip_tags and item.startswith(TAG_PREFIX)):
            out.append(f".{item}" if out else item)
    return "".join(out)


def json_type(value: Any) -> str:
    """The JSON type of a decoded value, as OpenAI's messages name it ("got a decimal")."""
    if value is None:
        return "null"
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind):
            return name
    return "an unsupported value"


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),  # before int: a bool is an int in Python
    (int, "an integer"),
    (float, "a decimal"),
    (str, "a string"),
    (dict, "an object"),
    (list, "an array"),
)

# The JSON type each plain pydantic type error expects.
_EXPECTED = {
    "string_type": "a string",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
}


def _number(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _invalid_type(param: str, expected: str, value: Any) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _invalid_value(param: str, value: Any, supported: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid value: '{value}'. Supported values are: {supported}.",
        param=param,
        code="invalid_value",
    )


def _missing(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    return InvalidRequestError(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def _union(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    """No member of a tagged union fits: wrong JSON type, or a missing/unknown tag field."""
    field = ctx.get("field")
    if field is None or not isinstance(value, dict):
        return _invalid_type(param, ctx["expected"], value)
    where = f"{param}.{field}"
    if field not in value:
        return _missing(where, value, ctx)
    if not isinstance(value[field], str):
        return _invalid_type(where, "a string", value[field])
    return _invalid_value(where, value[field], ctx["supported"])


def _enum(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    return _invalid_value(param, value, ctx["supported"])


def _rule(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    field = ctx["field"]
    where = f"{param}.{field}" if param and field else (field or param)
    return InvalidRequestError(ctx["message"], param=where or None, code=ctx["code"])


def _out_of_range(param: str, kind: str, above: bool, detail: str) -> InvalidRequestError:
    side, limit = ("above", "maximum") if above else ("below", "minimum")
    return InvalidRequestError(
        f"Invalid '{param}': {kind} {side} {limit} value. {detail}",
        param=param,
        code=f"{kind}_{side}_{limit[:3]}_value",
    )


def _float_type(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    if isinstance(value, int) and not isinstance(value, bool):
        # An integer too large for a double: beyond every range a number field has.
        detail = f"Expected a number within the range of a double, but got {value} instead."
        return _out_of_range(param, "decimal", value > 0, detail)
    return _invalid_type(param, "a number", value)


def _int_type(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    return _invalid_type(param, "an integer", value)


def _bound(key: str) -> Handler:
    above = key in ("le", "lt")
    relation = ("<" if above else ">") + ("=" if key in ("le", "ge") else "")

    def handle(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
        bound = ctx[key]
        kind = "decimal" if isinstance(bound, float) else "integer"
        detail = f"Expected a value {relation} {_number(bound)}, but got {_number(value)} instead."
        return _out_of_range(param, kind, above, detail)

    return handle


def _too_short(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    expected = f"Expected an array with minimum length {ctx['min_length']}"
    if not value:
        return InvalidRequestError(
            f"Invalid '{param}': empty array. {expected}, but got an empty array instead.",
            param=param,
            code="empty_array",
        )
    return InvalidRequestError(
        f"Invalid '{param}': array too short. {expected}, but got an array with length "
        f"{len(value)} instead.",
        param=param,
        code="array_below_min_length",
    )


def _too_long(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    maximum = ctx["max_length"]
    if isinstance(value, dict):
        return InvalidRequestError(
            f"Invalid '{param}': too many properties. Expected an object with at most {maximum} "
            f"properties, but got an object with {len(value)} properties instead.",
            param=param,
            code="object_above_max_properties",
        )
    return InvalidRequestError(
        f"Invalid '{param}': array too long. Expected an array with maximum length {maximum}, "
        f"but got an array with length {len(value)} instead.",
        param=param,
        code="array_above_max_length",
    )


def _string_too_short(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    expected = f"Expected a string with minimum length {ctx['min_length']}"
    if not value:
        return InvalidRequestError(
            f"Invalid '{param}': empty string. {expected}, but got an empty string instead.",
            param=param,
            code="empty_string",
        )
    return InvalidRequestError(
        f"Invalid '{param}': string too short. {expected}, but got a string with length "
        f"{len(value)} instead.",
        param=param,
        code="string_below_min_length",
    )


def _string_too_long(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid '{param}': string too long. Expected a string with maximum length "
        f"{ctx['max_length']}, but got a string with length {len(value)} instead.",
        param=param,
        code="string_above_max_length",
    )


def _pattern(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid '{param}': string does not match pattern. Expected a string that matches the "
        f"pattern '{ctx['pattern']}'.",
        param=param,
        code="invalid_value",
    )


def _extra(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    return InvalidRequestError(
        f"Unrecognized request argument supplied: {param}", param=param, code="unknown_parameter"
    )


# What `KEEPABLE` refuses that a request can carry: the JSON decoders refuse an unpaired
# surrogate as malformed JSON, so only U+0000 gets this far.
_NUL = "a NUL character (U+0000)"


def _unkeepable(param: str, value: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid '{param}': string contains {_NUL}, which cannot be stored.",
        param=param,
        code="invalid_value",
    )


def _map_key(kind: str, param: str, key: Any, ctx: dict[str, Any]) -> InvalidRequestError:
    """A key of `metadata` broke a rule; `param` names the map, not the (long) key."""
    if kind == UNKEEPABLE_ERROR:
        return InvalidRequestError(
            f"Invalid '{param}': key contains {_NUL}, which cannot be stored.",
            param=param,
            code="invalid_value",
        )
    if kind == "string_too_long":
        return InvalidRequestError(
            f"Invalid '{param}': key too long. Expected a key with maximum length "
            f"{ctx['max_length']}, but got a key with length {len(key)} instead.",
            param=param,
            code="string_above_max_length",
        )
    return InvalidRequestError(f"Invalid key in '{param}': '{key}'.", param=param, code=None)


_HANDLERS: dict[str, Handler] = {
    "missing": _missing,
    UNION_ERROR: _union,
    ENUM_ERROR: _enum,
    RULE_ERROR: _rule,
    UNKEEPABLE_ERROR: _unkeepable,
    "int_type": _int_type,
    "float_type": _float_type,
    "greater_than_equal": _bound("ge"),
    "greater_than": _bound("gt"),
    "less_than_equal": _bound("le"),
    "less_than": _bound("lt"),
    "too_short": _too_short,
    "too_long": _too_long,
    "string_too_short": _string_too_short,
    "string_too_long": _string_too_long,
    "string_pattern_mismatch": _pattern,
    "extra_forbidden": _extra,
}
