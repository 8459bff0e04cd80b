"""Building blocks of the request models, each failing with one structured pydantic error.

`RequestModel` is the base of every request model. Unions are tagged by callable
discriminators (`by_field`, `by_shape`) so that a bad `role` or part `type` gives one error
instead of one per union member; `enum_of` makes a `Literal` name its supported values;
`rule_error` reports a rule across fields; `KEEPABLE` refuses text no store can keep.
`validation.py` words these errors as OpenAI does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Tag
from pydantic_core import PydanticCustomError, PydanticKnownError

# Union tags land in pydantic's `loc`; this prefix marks them so that `param` can skip them.
TAG_PREFIX = "~"
_STRING = TAG_PREFIX + "string"
_ARRAY = TAG_PREFIX + "array"
_OBJECT = TAG_PREFIX + "object"

# The error types raised here; their ctx carries what the OpenAI wording needs.
UNION_ERROR = "chatkeep_union"
ENUM_ERROR = "chatkeep_enum"
RULE_ERROR = "chatkeep_rule"
UNKEEPABLE_ERROR = "chatkeep_unkeepable"


class RequestModel(BaseModel):
    """Base of every request model: strict types; unknown keys kept for backends."""

    model_config = ConfigDict(strict=True, extra="allow")


class _Discriminator(Discriminator):
    """A `Discriminator` that can sit inside a union, which hashes its members."""

    def __hash__(self) -> int:
        # The dataclass hash would include the (unhashable) error context dict.
        return hash(self.discriminator)


def tag(value: str) -> Tag:
    """The tag of one union member: its discriminator value ("user", "text"), or for
    `by_shape` and the string form of `by_field`, "string", "array" or "object"."""
    return Tag(TAG_PREFIX + value)


def supported_values(values: Sequence[str]) -> str:
    """`'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`, as OpenAI lists supported values."""
    quoted = [f"'{value}'" for value in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def by_field(
    field: str,
    supported: Sequence[str],
    *,
    expected: str = "an object",
    allow_string: bool = False,
) -> Discriminator:
    """A discriminator on `field` of an object (`role`, `type`), naming `supported` on failure.

    With `allow_string`, a bare string selects the member tagged "string" (the `"auto"`
    form of `tool_choice`); `expected` names the accepted JSON types for other input.
    """
    tags = {value: TAG_PREFIX + value for value in supported}

    def pick(value: Any) -> str | None:
        if isinstance(value, dict):
            found = value.get(field)
        elif isinstance(value, BaseModel):
            found = getattr(value, field, None)
        elif allow_string and isinstance(value, str):
            return _STRING
        else:
            return None
        return tags.get(found) if isinstance(found, str) else None

    context: dict[str, int | str | float] = {
        "field": field,
        "supported": supported_values(supported),
        "expected": expected,
    }
    return _Discriminator(
        pick,
        custom_error_type=UNION_ERROR,
        custom_error_message="Invalid union member",
        custom_error_context=context,
    )


def by_shape(expected: str) -> Discriminator:
    """A discriminator on the JSON type of the input: members tagged "string", "array",
    "object"; `expected` names them for the error ("one of a string or array of objects")."""

    def pick(value: Any) -> str | None:
        if isinstance(value, str):
            return _STRING
        if isinstance(value, list):
            return _ARRAY
        if isinstance(value, dict | BaseModel):
            return _OBJECT
        return None

    return _Discriminator(
        pick,
        custom_error_type=UNION_ERROR,
        custom_error_message="Invalid union member",
        custom_error_context={"expected": expected},
    )


def enum_of(literal: Any) -> BeforeValidator:
    """Check a `Literal[...]` up front so that its error names the supported values."""
    values: tuple[str, ...] = get_args(literal)
    allowed = frozenset(values)
    listing = supported_values(values)

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise PydanticKnownError("string_type")
        if value not in allowed:
            raise PydanticCustomError(ENUM_ERROR, "Invalid value", {"supported": listing})
        return value

    return BeforeValidator(check)


def rule_error(message: str, *, field: str | None, code: str | None) -> PydanticCustomError:
    """An error for a rule across fields; `field` is appended to the location of the model."""
    return PydanticCustomError(
        RULE_ERROR, "Invalid request", {"message": message, "field": field, "code": code}
    )


def keepable(value: str) -> bool:
    """Whether every store can keep `value` in a `text` column: no U+0000, which
    PostgreSQL's `text` cannot hold, and no lone surrogate, which is not UTF-8 (only the
    standard library's JSON decoder lets one through). On the hot path for `model` and each
    metadata key and value: one `in` test and one `isascii`, an encode only for non-ASCII."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def refuse_unkeepable(value: str) -> str:
    """`value`, or a validation error when a store could not keep it (see `keepable`)."""
    if not keepable(value):
        raise _unkeepable()
    return value


def _unkeepable() -> PydanticCustomError:
    # `validation.py` names the character from the input; nothing else to carry.
    return PydanticCustomError(UNKEEPABLE_ERROR, "String holds text no store can keep")


# Marks a `str` that is stored in a text column (`model`, metadata); put it after the
# string's own constraints, so that theirs keep their own error types.
KEEPABLE = AfterValidator(refuse_unkeepable)
