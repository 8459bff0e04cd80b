"""Strings for JSON Schema `pattern`s: checking a candidate, and writing one that matches.

Python's own regex parser gives the pattern's tree; `RegexWriter` walks it to write a
string, and `pattern_cost` refuses patterns whose nested repeats would make writing or
matching run away (a client's schema must not exhaust the server).
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sre_compile as regex_compiler
    import sre_parse as regex_parser
else:  # the same modules without the deprecated aliases' import-time warning
    from re import _compiler as regex_compiler
    from re import _parser as regex_parser

# Bigger minimums than this are refused: the value is built in memory, for a test model.
MAX_SIZE = 100_000


class UnsatisfiableSchemaError(ValueError):
    """The schema has no instance this generator can find (or none at all), or is malformed."""


def pattern_search(pattern: str, value: str) -> bool:
    """`re.search`, refusing patterns whose nested repeats make matching run away."""
    refuse_costly(pattern)
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True


def refuse_costly(pattern: str) -> None:
    if pattern_cost(pattern) > MAX_SIZE:
        # `((?:$){65535}){65535}` against "" takes minutes and gigabytes to match.
        raise UnsatisfiableSchemaError(f"pattern {pattern[:40]!r} repeats too deeply")


@functools.lru_cache(maxsize=256)
def pattern_cost(pattern: str) -> int:
    """The largest product of nested repeat minimums: steps a match takes at the least."""
    try:
        return subpattern_cost(regex_parser.parse(pattern).data)
    except (re.error, RecursionError, OverflowError):
        return 0  # `re` will refuse it too, or Python cannot parse it: left unchecked


def subpattern_cost(items: Any) -> int:
    c, cost = regex_parser, 1
    for op, av in getattr(items, "data", items):
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            cost = max(cost, max(av[0], 1) * subpattern_cost(av[2]))
        elif op in (c.SUBPATTERN, c.ASSERT, c.ASSERT_NOT):
            cost = max(cost, subpattern_cost(av[-1]))
        elif op is c.BRANCH:
            cost = max(cost, *(subpattern_cost(branch) for branch in av[1]))
    return cost


def strings_for_pattern(pattern: str, shortest: int) -> Iterator[str]:
    """Strings built from the pattern's parse tree, repeating each part 0, 1, 2, ... times."""
    refuse_costly(pattern)
    try:
        tree = regex_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return
    for repeat in (0, 1, 2, 3, 5, 8, 13, 21, 34, shortest, shortest + 1):
        try:
            yield "".join(RegexWriter(tree.state, repeat).write(tree.data))
        except UnsatisfiableSchemaError:
            continue  # too long a string for this many repeats


class RegexWriter:
    """Writes one string a parsed regex matches (lookarounds and anchors are skipped)."""

    CHARACTERS = "a0A_ -.bzZ9@/:" + string.printable + "é中"

    def __init__(self, state: regex_parser.State, repeat: int) -> None:
        self.state = state
        self.repeat = repeat
        self.groups: dict[int, str] = {}
        self.budget = MAX_SIZE
        self.characters: dict[int, str] = {}  # by id of the node's arguments

    def write(self, items: Any) -> Iterator[str]:
        c = regex_parser
        for op, av in getattr(items, "data", items):
            if op in (c.LITERAL, c.ANY, c.NOT_LITERAL, c.IN):
                yield self.character(op, av)
            elif op is c.BRANCH:
                yield from self.write(av[1][0])
            elif op is c.SUBPATTERN:
                text = "".join(self.write(av[-1]))
                if av[0] is not None:
                    self.groups[av[0]] = text
                yield text
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
                low, high, sub = av
                for _ in range(max(low, min(high, self.repeat))):
                    self.spend()
                    yield from self.write(sub)
            elif op is c.GROUPREF:
                yield self.groups.get(av, "")
            elif op is getattr(c, "ATOMIC_GROUP", None):
                yield from self.write(av)

    def character(self, op: Any, av: Any) -> str:
        """The first of CHARACTERS this one-character node matches ("" when none does)."""
        self.spend()
        if op is regex_parser.LITERAL:
            return chr(av)
        if id(av) not in self.characters:
            # Compiling the node alone lets `re` itself decide class membership.
            node = regex_compiler.compile(regex_parser.SubPattern(self.state, [(op, av)]))
            found = (ch for ch in self.CHARACTERS if node.fullmatch(ch))
            self.characters[id(av)] = next(found, "")
        return self.characters[id(av)]

    def spend(self) -> None:
        """Count one step of writing; nested repeats multiply, so the total is capped."""
        self.budget -= 1
        if self.budget < 0:
            raise UnsatisfiableSchemaError(f"the pattern's string is over {MAX_SIZE} steps")
