"""The built-in detectors: for each, the text shapes ("forms") it looks for and the checks
that a regular expression cannot make (Luhn, address validity, digit counts).

Every form is written to be joined into one alternation (`engine.py`), so each must hold
up on its own at any position: a form starts with a lookbehind that stops it from starting
inside a longer word or number, and ends with a lookahead that stops it from ending inside
one. Runs that could be split in several ways use possessive quantifiers, so that a long
run of digits or letters costs one pass, not a backtracking search.

Boundaries are ASCII on purpose: `\\w` is Unicode-aware, and text in scripts written without
spaces (Chinese, Japanese, Thai) puts letters right against an address or number, which
must still be found.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from chatkeep.service.keys import KEY_PREFIX, KEY_RANDOM_LENGTH

Validator = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Form:
    """One shape of a detector: a regex source, where needed a check of the match, and
    where useful `lead`, a character class that every match starts with (the engine
    tests it once for all the forms that share it)."""

    source: str
    validate: Validator | None = None
    lead: str | None = None


# No form starts right after an ASCII letter or digit: each form's own lookbehind says so
# (or says more). The engine tests this once before trying any form, which spares trying
# every form at every position inside a word; a new form must keep to it.
WORD_START = r"(?<![A-Za-z0-9])"
# Not inside a word or an identifier, and not the tail of a longer number ("1.415...").
_NUM_START = r"(?<![A-Za-z0-9_])(?<![0-9][.-])"
_NUM_END = r"(?![A-Za-z0-9_])(?![.-][0-9])"
# Secrets may follow '-', '_' or '.', as in `key=sk-...` or `ID_AKIA...`, but not a letter.
_TOKEN_START = WORD_START
# The leads: national numbers, cards and IPv4 start with a digit or '('; the keys start
# with their fixed prefixes (chatkeep's own included, whatever it becomes).
_NUMBER_LEAD = "[0-9(]"
_KEY_LEAD = "[" + re.escape("".join(sorted(set("sAgxe" + KEY_PREFIX[0])))) + "]"
_DIGITS = re.compile(r"[0-9]")


def _digit_count(text: str) -> int:
    return len(_DIGITS.findall(text))


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number carries in its last digit."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(text: str) -> bool:
    digits = "".join(_DIGITS.findall(text))
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _international(text: str) -> bool:
    # E.164 allows 15 digits at most; fewer than 8 (country code included) is no number.
    return 8 <= _digit_count(text) <= 15


_GROUPS = re.compile(r"[0-9]+")


def _trunk(text: str) -> bool:
    # National numbers dialled with a leading 0 have 10 or 11 digits (UK, FR, KR, AU, IN);
    # two digits, two digits, four digits is a date (`01 02 2024`), not a number.
    groups = [len(group) for group in _GROUPS.findall(text)]
    return sum(groups) in (10, 11) and groups[:3] != [2, 2, 4]


def _ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _ipv6(text: str) -> bool:
    # An address without a digit (`dead::beef`, `::`) is far likelier to be code (`Foo::Bar`).
    if _DIGITS.search(text) is None:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


EMAIL = (
    Form(
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@"
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
        r"(?![A-Za-z0-9-])"
    ),
)

PHONE = (
    # +1 415 555 0132, +44 (0)20 7946 0958, +14155550132: groups after '+' and a country code.
    Form(
        # (The lookahead, 8 digits near, spares checking every `+1` of a formula.)
        r"(?<![A-Za-z0-9_+])\+(?=(?:[ .()-]{0,2}+[0-9]){8})"
        r"[0-9]++(?:(?:[ .-]?\([0-9]++\)[ .-]?|[ .-])[0-9]++)*+" + _NUM_END,
        _international,
    ),
    # (415) 555-0132, 415-555-0132, 415.555.0132, 1-800-555-0199.
    Form(
        _NUM_START + r"(?:1[ .-])?(?:\([0-9]{3}\) ?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}" + _NUM_END,
        None,
        _NUMBER_LEAD,
    ),
    # 4155550132: ten bare digits only where they can be a North American number (area
    # code and exchange do not start with 0 or 1), which keeps out Unix timestamps.
    Form(_NUM_START + r"[2-9][0-9]{2}[2-9][0-9]{6}" + _NUM_END, None, _NUMBER_LEAD),
    # 020 7946 0958, 01 23 45 67 89, 010-1234-5678: one separator kind throughout.
    Form(_NUM_START + r"0[0-9]{1,4}(?: [0-9]{2,8}){1,4}" + _NUM_END, _trunk, _NUMBER_LEAD),
    Form(_NUM_START + r"0[0-9]{1,4}(?:-[0-9]{2,8}){1,4}" + _NUM_END, _trunk, _NUMBER_LEAD),
)

CARD = (
    # Issuer ranges start with 2-6 (Mastercard 2/5, Amex/JCB/Diners 3, Visa 4, Discover
    # and UnionPay 6); numbers starting 0, 1, 7-9 are ids and millisecond timestamps.
    Form(_NUM_START + r"[2-6][0-9]{12,18}" + _NUM_END, _card, _NUMBER_LEAD),
    # 4111 1111 1111 1111, 3782-822463-10005: groups, one separator kind throughout.
    Form(
        _NUM_START
        + r"[2-6][0-9]{3}(?P<card_sep>[ -])[0-9]{3,6}(?:(?P=card_sep)[0-9]{3,6}){1,3}"
        + _NUM_END,
        _card,
        _NUMBER_LEAD,
    ),
)

_B64URL = r"[A-Za-z0-9_-]"


def _key(source: str) -> Form:
    """A key or token with a fixed prefix, not glued to the word before it."""
    return Form(_TOKEN_START + source, None, _KEY_LEAD)


SECRET = (
    # chatkeep's own API keys (chatkeep.service.keys), exact, whatever the prefix becomes.
    _key(re.escape(KEY_PREFIX) + f"[A-Za-z0-9]{{{KEY_RANDOM_LENGTH}}}(?![A-Za-z0-9])"),
    # OpenAI (sk-..., sk-proj-..., sk-svcacct-...) and Anthropic (sk-ant-api03-...) keys.
    _key(r"sk-[A-Za-z0-9][A-Za-z0-9_-]{19,}+"),
    # AWS access key ids: long-term (AKIA) and temporary (ASIA).
    _key(r"A(?:KI|SI)A[A-Z0-9]{16}(?![A-Za-z0-9])"),
    # GitHub: classic personal, OAuth, user-to-server, server-to-server, refresh tokens.
    _key(r"gh[pousr]_[A-Za-z0-9]{20,}+"),
    _key(r"github_pat_[A-Za-z0-9_]{20,}+"),
    # Slack bot, user, app-level, refresh and configuration tokens.
    _key(r"xox[abprs]-[A-Za-z0-9-]{10,}+"),
    # Google API keys.
    _key(r"AIza" + _B64URL + r"{30,}+"),
    # JSON Web Tokens: base64url header (`{"` is `eyJ`), payload, signature (empty if unsigned).
    _key(r"eyJ" + _B64URL + r"{5,}+\." + _B64URL + r"{2,}+\." + _B64URL + r"*+"),
    # The token after `Bearer ` (the word itself stays, to show what the text was about).
    # "Bearer authentication" is prose: a token needs 8 characters and a digit, or 20.
    Form(
        r"(?<=(?<![A-Za-z0-9])(?i:bearer)[ \t])"
        r"(?=[A-Za-z0-9._~+/-]{8})"
        r"(?=[A-Za-z0-9._~+/-]*[0-9]|[A-Za-z0-9._~+/-]{20})"
        r"[A-Za-z0-9_~+/-]++(?:\.[A-Za-z0-9_~+/-]++)*+=*+"
    ),
)

IP = (
    Form(
        r"(?<![A-Za-z0-9_.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![A-Za-z0-9_])(?!\.[0-9])",
        _ipv4,
        _NUMBER_LEAD,
    ),
    # Anything of hex groups and colons with at least two colons (and an optional dotted
    # IPv4 tail), left to `ipaddress` to accept: `12:30:45` and MAC addresses are refused.
    Form(
        r"(?<![A-Za-z0-9_:.])(?:[0-9A-Fa-f]{0,4}:){2,8}"
        r"(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?"
        r"(?![A-Za-z0-9_:])(?!\.[0-9])",
        _ipv6,
    ),
)


@dataclass(frozen=True, slots=True)
class Builtin:
    """A built-in detector: its rule name, its placeholder, its forms and its rank.

    When two detectors match the same text at the same place, the lower rank wins: a key is
    a secret even where its characters also read as a number. Custom rules rank right after
    secrets (`CUSTOM_RANK`), so an operator's pattern is preferred over a generic detector.
    """

    name: str
    placeholder: str
    rank: int
    forms: tuple[Form, ...]


CUSTOM_RANK = 1

BUILTINS: tuple[Builtin, ...] = (
    Builtin("email", "[EMAIL]", 2, EMAIL),
    Builtin("phone", "[PHONE]", 5, PHONE),
    Builtin("card", "[CARD]", 3, CARD),
    Builtin("secret", "[SECRET]", 0, SECRET),
    Builtin("ip", "[IP]", 4, IP),
)
