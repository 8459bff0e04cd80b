"""The Redactor: a project's rules compiled once, applied to text in one pass.

Every form of every enabled detector is joined into one alternation, so finding the next
thing to redact is a single regex search however many detectors are on: the cost grows
with the text, not with detectors x text. The alternation only says where something
starts; at that place each form is tried on its own (`match` at that position, cheap), its
check run (Luhn, `ipaddress`), and the longest valid match wins, ties going to the lower
rank (secrets first). Where nothing there is valid, the search goes on one character
further; the forms' lookbehinds keep it from starting again inside the same number.

A custom pattern that cannot be spliced into the alternation unchanged (named groups,
backreferences, whose numbers would shift, global inline flags) is searched on its own
beside it, with the next match of each search kept until the scan passes it, so the text
is still read once per search.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chatkeep.redaction.detectors import BUILTINS, CUSTOM_RANK, WORD_START, Form, Validator
from chatkeep.redaction.rules import RedactionRule, check_rule
from chatkeep.redaction.shapes import redact_completion, redact_messages

# What would change meaning once a pattern sits inside a bigger one.
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")
_GLOBAL_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")


@dataclass(frozen=True, slots=True)
class _Form:
    regex: re.Pattern[str]
    validate: Validator | None
    placeholder: str
    # Lower wins a tie in length: (detector rank, rule position among custom rules).
    rank: tuple[int, int]
    # The characters a match can start with, where the form says (see `Form.lead`).
    lead: frozenset[str] | None = None


class Redactor:
    """Applies a project's redaction rules to text, request messages and completions.

    Immutable once built and safe to share between requests and threads. The results are
    new objects wherever something was replaced; the input is never changed (the client's
    answer is the same object as the one being stored), and is returned as is when there
    is nothing to replace.
    """

    __slots__ = ("_forms", "_rules", "_searches")

    def __init__(self, rules: Sequence[RedactionRule]) -> None:
        """Compile `rules`; a `ValueError` names the first one that cannot be applied."""
        self._rules = tuple(dict.fromkeys(rules))
        forms: list[_Form] = []
        builtin: list[Form] = []
        spliced: list[str] = []
        apart: list[re.Pattern[str]] = []
        for position, rule in enumerate(self._rules):
            compiled = check_rule(rule)
            if compiled is None:
                detector = next(b for b in BUILTINS if b.name == rule.detector)
                for form in detector.forms:
                    regex = re.compile(form.source)
                    rank = (detector.rank, 0)
                    lead = _characters(form.lead)
                    forms.append(_Form(regex, form.validate, detector.placeholder, rank, lead))
                    builtin.append(form)
                continue
            forms.append(_Form(compiled, None, f"[{rule.name}]", (CUSTOM_RANK, position)))
            if _can_splice(compiled):
                spliced.append(compiled.pattern)
            else:
                apart.append(compiled)
        self._forms = tuple(forms)
        joined = _alternation(builtin, spliced)
        self._searches = tuple(apart) if joined is None else (joined, *apart)

    @property
    def rules(self) -> tuple[RedactionRule, ...]:
        """The rules applied, in their first-given order, without repeats."""
        return self._rules

    def text(self, value: str) -> str:
        """`value` with every match replaced by its placeholder; `value` itself if none."""
        if not self._searches or not value:
            return value
        spans = self._spans(value)
        if not spans:
            return value
        pieces: list[str] = []
        last = 0
        for start, end, placeholder in spans:
            pieces.append(value[last:start])
            pieces.append(placeholder)
            last = end
        pieces.append(value[last:])
        return "".join(pieces)

    def messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A create request's `messages`, redacted (`shapes.redact_message` says where)."""
        return redact_messages(messages, self.text)

    def completion(self, completion: dict[str, Any]) -> dict[str, Any]:
        """A stored `chat.completion`, with each choice's message redacted; nothing else."""
        return redact_completion(completion, self.text)

    def _spans(self, text: str) -> list[tuple[int, int, str]]:
        """The (start, end, placeholder) to replace, in order and without overlap."""
        searches = self._searches
        size = len(text)
        # Where each search's next match at or after `position` starts; `size`: none left.
        upcoming = [-1] * len(searches)
        spans: list[tuple[int, int, str]] = []
        position = 0
        while position < size:
            start = size
            for index, search in enumerate(searches):
                found = upcoming[index]
                if found < position:
                    match = search.search(text, position)
                    found = upcoming[index] = size if match is None else match.start()
                start = min(start, found)
            if start >= size:
                break
            best = self._best_at(text, start)
            if best is None:
                position = start + 1
                continue
            spans.append((start, *best))
            position = best[0]
        return spans

    def _best_at(self, text: str, start: int) -> tuple[int, str] | None:
        """The end and placeholder of the longest valid match at `start`, if any."""
        best_end = start
        best_rank = (0, 0)
        placeholder: str | None = None
        char = text[start]
        for form in self._forms:
            if form.lead is not None and char not in form.lead:
                continue
            match = form.regex.match(text, start)
            if match is None:
                continue
            end = match.end()
            if end < best_end or end == start:
                continue
            if end == best_end and form.rank >= best_rank:
                continue
            if form.validate is not None and not form.validate(match.group()):
                continue
            best_end, best_rank, placeholder = end, form.rank, form.placeholder
        return None if placeholder is None else (best_end, placeholder)


def _characters(lead: str | None) -> frozenset[str] | None:
    """The characters of a lead class (leads are ASCII classes)."""
    if lead is None:
        return None
    test = re.compile(lead)
    return frozenset(char for char in map(chr, range(128)) if test.fullmatch(char))


def _alternation(builtin: list[Form], custom: list[str]) -> re.Pattern[str] | None:
    """One search for all the forms that can share one.

    The built-in forms sit behind `WORD_START`, tested once for all of them, and forms
    with the same lead behind one test of it: most places in prose are inside a word, and
    most word starts are no digit and no key prefix, so most places cost one or two tests
    instead of one per form."""
    by_lead: dict[str | None, list[str]] = {}
    for form in builtin:
        by_lead.setdefault(form.lead, []).append(f"(?:{form.source})")
    branches = [
        "|".join(sources) if lead is None else f"(?={lead})(?:{'|'.join(sources)})"
        for lead, sources in by_lead.items()
    ]
    alternatives = [f"(?:{pattern})" for pattern in custom]
    if branches:
        alternatives.insert(0, f"{WORD_START}(?:{'|'.join(branches)})")
    return re.compile("|".join(alternatives)) if alternatives else None


def _can_splice(compiled: re.Pattern[str]) -> bool:
    """Whether a custom pattern means the same inside the alternation as on its own."""
    pattern = compiled.pattern
    return (
        not compiled.groupindex
        and _BACKREFERENCE.search(pattern) is None
        and _GLOBAL_FLAGS.match(pattern) is None
    )
