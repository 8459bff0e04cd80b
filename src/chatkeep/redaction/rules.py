"""Redaction rules: what a project's policy holds, in the one-line text form operators write.

A rule is a built-in detector's name (`email`) or a custom pattern `NAME=regex`, whose
matches become `[NAME]`. Rules are checked here, where they are read, so that a policy
with a broken rule is refused when it is set, not when the first completion is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatkeep.redaction.detectors import BUILTINS

BUILTIN_DETECTORS: tuple[str, ...] = tuple(builtin.name for builtin in BUILTINS)
CUSTOM = "custom"

_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
# Text that a pattern able to match nothing will match nothing in: `^`, `$`, `\b`, `x*`,
# `a|` and lookarounds of common characters all show up as an empty match somewhere here.
_EMPTY_PROBE = "a A0 _-.,:;@/\n\t"


@dataclass(frozen=True, slots=True)
class RedactionRule:
    """One rule of a project's policy: a built-in detector, or a custom named pattern."""

    detector: str
    # For custom rules: the placeholder's name (`[NAME]`) and the regular expression.
    name: str | None = None
    pattern: str | None = None


def parse_rule(text: str) -> RedactionRule:
    """`email` -> a built-in rule; `NAME=regex` -> a custom rule (split at the first `=`)."""
    name, sep, pattern = text.partition("=")
    if not sep:
        detector = text.strip()
        if detector in BUILTIN_DETECTORS:
            return RedactionRule(detector)
        raise ValueError(
            f"Unknown redaction rule {text!r}: expected one of {', '.join(BUILTIN_DETECTORS)}, "
            "or NAME=regex for a custom pattern."
        )
    rule = RedactionRule(CUSTOM, name.strip(), pattern)
    check_rule(rule)
    return rule


def format_rule(rule: RedactionRule) -> str:
    """The text form of a rule: `parse_rule(format_rule(rule)) == rule`."""
    check_rule(rule)
    if rule.detector == CUSTOM:
        return f"{rule.name}={rule.pattern}"
    return rule.detector


def check_rule(rule: RedactionRule) -> re.Pattern[str] | None:
    """Refuse a rule that cannot be applied (`ValueError` naming it); a custom rule's
    compiled pattern, None for a built-in."""
    if rule.detector in BUILTIN_DETECTORS:
        if rule.name is not None or rule.pattern is not None:
            raise ValueError(
                f"Redaction rule {rule.detector!r} is built in: it takes no name or pattern."
            )
        return None
    if rule.detector != CUSTOM:
        raise ValueError(
            f"Unknown redaction detector {rule.detector!r}: expected one of "
            f"{', '.join(BUILTIN_DETECTORS)}, or {CUSTOM!r} with a name and a pattern."
        )
    return compile_custom(rule.name, rule.pattern)


def compile_custom(name: str | None, pattern: str | None) -> re.Pattern[str]:
    """A custom rule's pattern, compiled, once its name and pattern are known to be usable."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ValueError(
            f"Invalid name {name!r} for a custom redaction rule: it must be capital letters, "
            "digits and underscores, starting with a letter (e.g. EMPLOYEE_ID=E[0-9]{6})."
        )
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"Custom redaction rule {name} has no pattern (expected {name}=regex).")
    try:
        compiled = re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(
            f"Custom redaction rule {name} has an invalid regular expression {pattern!r}: {exc}."
        ) from None
    if compiled.match("") is not None or any(
        match.start() == match.end() for match in compiled.finditer(_EMPTY_PROBE)
    ):
        raise ValueError(
            f"Custom redaction rule {name} ({pattern!r}) can match the empty string; "
            "it must match at least one character."
        )
    return compiled
