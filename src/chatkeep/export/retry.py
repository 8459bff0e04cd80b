"""When a request to a source server is worth sending again, and after how long.

A 429 (rate limited), a 5xx, a 408 or a failed connection may pass: each is tried again
after an exponential backoff with jitter (`base` seconds, doubling, capped at `cap`), or
after what the answer's `retry-after` (seconds or an HTTP date) or `retry-after-ms` asks,
when it asks for longer; `x-should-retry: false` is obeyed, as the official SDKs obey it.
Anything else (400, 401, 403, 404) is answered at once.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol

_PASSING = frozenset({408, 409, 429})


class Answer(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> object: ...


@dataclass
class Retry:
    """Up to `attempts` tries in all; `rng` only spreads the waits."""

    attempts: int = 8
    base: float = 0.5
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def after(self, attempt: int, answer: Answer | None) -> float | None:
        """Seconds to wait before try `attempt + 1`, or None when there is none: the
        answer cannot pass, or `attempt` was the last."""
        if attempt >= self.attempts:
            return None
        if answer is not None:
            headers = answer.headers
            should = _header(headers, "x-should-retry")
            if should == "false":
                return None
            if should != "true" and answer.status not in _PASSING and answer.status < 500:
                return None
        backoff: float = min(self.cap, self.base * 2 ** (attempt - 1))
        backoff *= 0.5 + self.rng.random() / 2
        asked = _asked(answer.headers) if answer is not None else None
        return max(backoff, min(asked, self.cap)) if asked is not None else backoff


def _header(headers: object, name: str) -> str | None:
    get = getattr(headers, "get", None)
    value = get(name) if get is not None else None
    return value.strip().lower() if isinstance(value, str) else None


def _asked(headers: object) -> float | None:
    """The wait a `retry-after-ms` or `retry-after` header asks for, in seconds."""
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    after = _header(headers, "retry-after")
    if after is None:
        return None
    try:
        return max(0.0, float(after))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(after).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
