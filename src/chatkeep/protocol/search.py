"""The `search` extension of the list endpoint: chatkeep's query syntax, parsed once.

A query is terms separated by spaces, every one of which a completion must match (AND):

- a word, `timeout`: the word anywhere in the text, any case;
- a phrase in double quotes, `"connection reset"`: those words next to each other, in order;
- a prefix, `time*`: any word beginning with the letters and digits before the star.

A word with punctuation inside (`foo-bar`, `example.com`) is matched as the phrase of its
words. Matching ignores case and keeps accents (`café` is not `cafe`), the same on both
stores: SQLite's FTS5 `unicode61` tokenizer and PostgreSQL's `simple` configuration.
Each store compiles the terms into its own query language (`store.search_sql`); no user
text ever reaches either as syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from chatkeep.errors import InvalidRequestError

TermKind = Literal["words", "prefix"]
MAX_SEARCH_CHARS = 1000
MAX_TERMS = 16
# A run of letters or digits: what both stores' tokenizers treat as (part of) a word.
_WORD = re.compile(r"[^\W_]", re.UNICODE)
_PREFIX = re.compile(r"[^\W_]+", re.UNICODE)
# A phrase in quotes, or a run of anything but spaces and quotes.
_TOKEN = re.compile(r'"([^"]*)"|([^\s"]+)')


@dataclass(frozen=True, slots=True)
class Term:
    """One term of a query: `words` (one word, or a phrase of them) or a `prefix`."""

    kind: TermKind
    text: str


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed `search` value: the terms every match holds, and the text as given."""

    terms: tuple[Term, ...]
    text: str


def _invalid(message: str, code: str = "invalid_value") -> InvalidRequestError:
    return InvalidRequestError(f"Invalid 'search': {message}", param="search", code=code)


def parse_search(raw: str) -> SearchQuery:
    """The terms of `raw`, or a 400 naming `search` saying what is wrong with it."""
    if len(raw) > MAX_SEARCH_CHARS:
        raise _invalid(
            f"string too long. Expected a string with maximum length {MAX_SEARCH_CHARS}, "
            f"but got a string with length {len(raw)} instead.",
            "string_above_max_length",
        )
    if "\x00" in raw:
        raise _invalid("the query contains a NUL character.")
    if raw.count('"') % 2:
        raise _invalid("a phrase is not closed: every '\"' needs its closing '\"'.")
    terms: list[Term] = []
    # U+E000 separates values in SQLite's index (`store.search_sql`): never a query's.
    for match in _TOKEN.finditer(raw.replace("\ue000", " ")):
        phrase, bare = match.group(1), match.group(2)
        text = phrase if phrase is not None else bare
        if phrase is None and text.endswith("*"):
            stem = text[:-1]
            if not _PREFIX.fullmatch(stem):
                raise _invalid(
                    f"'{text}' is not a prefix: put '*' right after letters or digits only "
                    "(as in 'time*')."
                )
            terms.append(Term("prefix", stem))
            continue
        if not _WORD.search(text):
            if phrase is not None and not text.strip():
                raise _invalid("a phrase in quotes is empty.")
            raise _invalid(f"'{text}' holds no letter or digit to search for.")
        terms.append(Term("words", " ".join(text.split())))
    if not terms:
        raise _invalid("the query is empty. Give at least one word to search for.")
    if len(terms) > MAX_TERMS:
        raise _invalid(f"too many terms ({len(terms)}). Expected at most {MAX_TERMS}.")
    return SearchQuery(tuple(terms), raw)


def fts5_match(query: SearchQuery) -> str:
    """The query as an FTS5 MATCH expression: each term a quoted string (so nothing the
    user wrote is FTS5 syntax), a prefix followed by `*`; terms side by side are ANDed."""
    parts = []
    for term in query.terms:
        quoted = '"' + term.text.replace('"', '""') + '"'
        parts.append(quoted + "*" if term.kind == "prefix" else quoted)
    return " ".join(parts)
