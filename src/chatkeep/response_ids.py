"""Identifiers of the Responses API: response ids (time-ordered), and item ids.

A response id is `resp_` and 48 lowercase hex digits, the shape of OpenAI's: the first 12
digits are the creation time in Unix milliseconds, the rest random, so ids sort as strings
in creation order (hex digits sort in ASCII as they count) and retention can turn "older
than" into "id below" as it does for completion ids. Item ids (`msg_`, `fc_`, `fco_`) are
random: an input item's place is its position in its response, not its id.
"""

from __future__ import annotations

import re

from chatkeep.ids import TimeOrderedMinter

RESPONSE_PREFIX = "resp_"
_TIME_DIGITS = 12  # 48 bits of milliseconds
_RANDOM_DIGITS = 36
_RANDOM_BITS = _RANDOM_DIGITS * 4
RESPONSE_ID_PATTERN = re.compile(r"^resp_[0-9a-f]{48}$")


class ResponseIdGenerator:
    """Mints response ids (strictly increasing within one process) and item ids. None of
    them is a secret (every read is scoped to its project), so one seeded PRNG serves."""

    def __init__(self) -> None:
        self._minter = TimeOrderedMinter(_RANDOM_BITS)
        self._random = self._minter.random

    def new_response_id(self) -> tuple[str, int]:
        """A new response id and its creation time in Unix milliseconds."""
        minted = self._minter.mint()
        return f"{RESPONSE_PREFIX}{minted:048x}", minted >> _RANDOM_BITS

    def item_id(self, prefix: str) -> str:
        """`msg_`, `fc_`... and 48 hex digits."""
        return f"{prefix}_{self._random.getrandbits(192):048x}"


def is_response_id(value: str) -> bool:
    return RESPONSE_ID_PATTERN.match(value) is not None


def response_id_floor(unix_ms: int) -> str:
    """The smallest response id minted at `unix_ms` or later (retention's "id below")."""
    return f"{RESPONSE_PREFIX}{max(unix_ms, 0) << _RANDOM_BITS:048x}"
