"""Identifiers: completion ids (time-ordered), request ids, message ids, tool-call ids.

A completion id is `chatcmpl-` plus 29 base62 characters, the shape OpenAI uses. Ours encode
the creation time in milliseconds in their leading characters, in an alphabet whose ASCII
order is its numeric order, so ids sort as strings in creation order. The list endpoint's
cursor is therefore the id itself: an `after` id keeps its place even once it is deleted.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import threading
import time
import weakref
from functools import partial

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
COMPLETION_PREFIX = "chatcmpl-"
COMPLETION_BODY_LENGTH = 29
_RANDOM_BITS = 120  # 48 bits of milliseconds + 120 random bits < 62**29
_RANDOM_MASK = (1 << _RANDOM_BITS) - 1
COMPLETION_ID_PATTERN = re.compile(r"^chatcmpl-[0-9A-Za-z]{29}$")
MESSAGE_ID_PATTERN = re.compile(r"^(chatcmpl-[0-9A-Za-z]{29})-(0|[1-9][0-9]{0,8})$")


# Every two-digit base62 numeral, by value: an id is made two digits per division.
_BASE62_PAIRS = tuple(high + low for high in BASE62 for low in BASE62)


def _base62(value: int, width: int) -> str:
    """`value` in `width` base62 digits, most significant first (the low `width` digits)."""
    pieces = []
    for _ in range(width // 2):
        value, pair = divmod(value, 3844)  # 62 ** 2
        pieces.append(_BASE62_PAIRS[pair])
    if width % 2:
        pieces.append(BASE62[value % 62])
    return "".join(reversed(pieces))


class TimeOrderedMinter:
    """Numbers that begin with the minting time in Unix milliseconds, then `random_bits`
    random bits, strictly increasing within one process (thread-safe): the body of a
    time-ordered id. Its PRNG, seeded from the OS, is reseeded in a forked child, which
    would otherwise repeat its parent's sequence. Also the PRNG of the other values its
    owner mints (none of them secrets)."""

    def __init__(self, random_bits: int) -> None:
        self.random = random.Random(os.urandom(32))
        self._bits = random_bits
        self._lock = threading.Lock()
        self._last = 0
        # Weakly held: a generator that is gone leaves nothing behind in the fork hooks.
        os.register_at_fork(after_in_child=partial(_reseed, weakref.ref(self.random)))

    def mint(self) -> int:
        now_ms = time.time_ns() // 1_000_000
        candidate = (now_ms << self._bits) | self.random.getrandbits(self._bits)
        with self._lock:
            if candidate <= self._last:
                candidate = self._last + 1
            self._last = candidate
        return candidate


class CompletionIdGenerator:
    """Mints the ids of the hot path: completion ids, request ids and server-chosen seeds.

    Completion ids strictly increase within one process (thread-safe); across processes
    (several servers on one PostgreSQL) ids from the same millisecond interleave by their
    random part, which is still one total order.

    The random parts come from one PRNG seeded from the OS when the generator is made, not
    from a system call per id: none of these values is a secret (every read is scoped to the
    caller's project, and a foreign id answers exactly as an unknown one), and `getrandom`
    per id cost about 8% of a relayed request's CPU on the benchmark machine. API keys, which
    are secrets, come from `secrets`.
    """

    def __init__(self) -> None:
        self._minter = TimeOrderedMinter(_RANDOM_BITS)
        self._random = self._minter.random

    def new_id(self) -> tuple[str, int]:
        """Return a new completion id and its creation time in Unix milliseconds."""
        minted = self._minter.mint()
        return COMPLETION_PREFIX + _base62(minted, COMPLETION_BODY_LENGTH), minted >> _RANDOM_BITS

    def request_id(self) -> str:
        """`req_` and 32 lowercase hex digits, as OpenAI's `x-request-id`."""
        return f"req_{self._random.getrandbits(128):032x}"

    def seed(self) -> int:
        """A server-chosen seed: a non-negative int64, as in OpenAI's stored examples."""
        return self._random.getrandbits(63)


def _reseed(generator: weakref.ref[random.Random]) -> None:
    found = generator()
    if found is not None:
        found.seed(os.urandom(32))


def is_completion_id(value: str) -> bool:
    return COMPLETION_ID_PATTERN.match(value) is not None


def message_id(completion_id: str, index: int) -> str:
    return f"{completion_id}-{index}"


def parse_message_id(value: str) -> tuple[str, int] | None:
    """Split `<completion_id>-<index>` into its parts, or None when it is not of that shape."""
    match = MESSAGE_ID_PATTERN.match(value)
    if match is None:
        return None
    return match.group(1), int(match.group(2))


def new_tool_call_id() -> str:
    return "call_" + "".join(secrets.choice(BASE62) for _ in range(24))


def completion_id_floor(unix_ms: int) -> str:
    """The smallest completion id minted at `unix_ms` or later: every id below it was minted
    before. Retention turns "older than" into "id below" with it (ids sort by time)."""
    return COMPLETION_PREFIX + _base62(max(unix_ms, 0) << _RANDOM_BITS, COMPLETION_BODY_LENGTH)


def completion_id_at(unix_ms: int) -> str:
    """A new completion id minted as if at `unix_ms` (for a completion imported with its
    original creation time): that time, then random bits, as `new_id` makes them."""
    value = (max(unix_ms, 0) << _RANDOM_BITS) | secrets.randbits(_RANDOM_BITS)
    return COMPLETION_PREFIX + _base62(value, COMPLETION_BODY_LENGTH)


def completion_id_ms(completion_id: str) -> int:
    """The Unix milliseconds a completion id was minted at (`completion_id_floor`'s
    inverse); ValueError when `completion_id` is not one of our completion ids."""
    if not is_completion_id(completion_id):
        raise ValueError(f"not a completion id: {completion_id!r}")
    value = 0
    for char in completion_id[len(COMPLETION_PREFIX) :]:
        value = value * 62 + BASE62.index(char)
    return value >> _RANDOM_BITS
