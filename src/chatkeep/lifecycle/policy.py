"""A project's data policy: whether it stores, how long content and records are kept, and
what is redacted from the stored copy (docs/lifecycle.md).

A policy is kept as the settings an operator set (a JSON map in the `projects` table, or a
`[projects.NAME]` table in the config file); anything unset takes its default, so a new
default reaches every project that did not choose. `ProjectPolicy.parse` validates a map
and resolves it into the effective policy the server applies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from chatkeep.ids import completion_id_floor
from chatkeep.redaction import RedactionRule, Redactor, format_rule, parse_rule
from chatkeep.store.base import Cutoffs

StoreMode = Literal["request", "always", "never"]
STORE_MODES: tuple[StoreMode, ...] = ("request", "always", "never")
SETTINGS = ("store", "store_content", "content_retention", "record_retention", "redact")

FOREVER = "forever"
DEFAULT_CONTENT_RETENTION = "30d"  # OpenAI keeps stored completions 30 days
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^([1-9][0-9]{0,9})([smhdw])$")
_SHORTEST = 60  # seconds: a shorter window would purge what was just stored


class PolicyError(ValueError):
    """A project setting that cannot be applied; the message names it and says why."""


def parse_duration(name: str, text: object) -> int | None:
    """Seconds for `30d`, `12h`, `90m`, `3600s`, `2w`; None for `forever`."""
    if text == FOREVER:
        return None
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise PolicyError(
            f"{name} must be a duration such as 30d, 12h, 90m, 2w or 3600s, or {FOREVER!r}; "
            f"got {text!r}."
        )
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < _SHORTEST:
        raise PolicyError(f"{name} must be at least {_SHORTEST}s; got {text!r}.")
    return seconds


def format_duration(seconds: int | None) -> str:
    if seconds is None:
        return FOREVER
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class ProjectPolicy:
    """The effective policy of one project. `settings` holds only what was set."""

    store: StoreMode = "request"
    store_content: bool = True
    content_retention: int | None = 30 * 86400  # seconds; None keeps forever
    record_retention: int | None = 30 * 86400
    redact: tuple[RedactionRule, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    redactor: Redactor | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> ProjectPolicy:
        """Validate a settings map (unknown names, wrong types, bad values are refused)."""
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise PolicyError(
                f"Unknown project setting {unknown[0]!r}; known: {', '.join(SETTINGS)}."
            )
        store = settings.get("store", "request")
        if store not in STORE_MODES:
            raise PolicyError(f"store must be one of {', '.join(STORE_MODES)}; got {store!r}.")
        store_content = settings.get("store_content", True)
        if not isinstance(store_content, bool):
            raise PolicyError(f"store_content must be true or false; got {store_content!r}.")
        content = parse_duration(
            "content_retention", settings.get("content_retention", DEFAULT_CONTENT_RETENTION)
        )
        record = content
        if "record_retention" in settings:
            record = parse_duration("record_retention", settings["record_retention"])
            if content is not None and (record is not None and record < content):
                raise PolicyError(
                    f"record_retention ({format_duration(record)}) is shorter than "
                    f"content_retention ({format_duration(content)}): a record outlives its "
                    "content, never the other way round."
                )
            if content is None and record is not None:
                raise PolicyError(
                    "record_retention must be 'forever' when content_retention is 'forever'."
                )
        rules = _rules(settings.get("redact", []))
        try:
            redactor = Redactor(rules) if rules else None
        except ValueError as exc:
            raise PolicyError(f"redact: {exc}") from None
        return cls(
            store=cast(StoreMode, store),
            store_content=store_content,
            content_retention=content,
            record_retention=record,
            redact=rules,
            settings=dict(settings),
            redactor=redactor,
        )

    def decides_store(self, asked: bool | None) -> bool:
        """Whether a completion whose request said `store: asked` is kept."""
        if self.store == "request":
            return bool(asked)
        return self.store == "always"

    def cutoffs(self, now_ms: int) -> Cutoffs:
        """The ids retention removes at `now_ms` (Unix milliseconds)."""
        return Cutoffs(
            content_before=_floor(now_ms, self.content_retention),
            records_before=_floor(now_ms, self.record_retention),
        )

    def describe(self) -> dict[str, Any]:
        """Every setting with its effective value, as `chatkeep projects show` prints."""
        return {
            "store": self.store,
            "store_content": self.store_content,
            "content_retention": format_duration(self.content_retention),
            "record_retention": format_duration(self.record_retention),
            "redact": [format_rule(rule) for rule in self.redact],
        }


def _floor(now_ms: int, seconds: int | None) -> str | None:
    return None if seconds is None else completion_id_floor(now_ms - seconds * 1000)


def _rules(value: object) -> tuple[RedactionRule, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PolicyError(f"redact must be a list of rules (strings); got {value!r}.")
    rules = []
    for text in value:
        try:
            rules.append(parse_rule(text))
        except ValueError as exc:
            raise PolicyError(f"redact: {exc}") from None
    return tuple(dict.fromkeys(rules))


# Last: `parse` needs the functions above.
DEFAULT_POLICY = ProjectPolicy.parse({})
