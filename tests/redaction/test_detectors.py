"""Each built-in detector on its own: what it replaces, and the look-alikes it leaves."""

from __future__ import annotations

import re

import pytest

from chatkeep.redaction import BUILTIN_DETECTORS, RedactionRule, Redactor
from chatkeep.redaction.detectors import BUILTINS, luhn_valid
from chatkeep.service.keys import new_secret

ALL = Redactor([RedactionRule(name) for name in BUILTIN_DETECTORS])

EMAIL_POSITIVE = [
    ("mail alice@example.com now", "mail [EMAIL] now"),
    ("first.last+tag@sub.example.co.uk", "[EMAIL]"),
    ("<bob_99@mail-server.example.org>", "<[EMAIL]>"),
    ("ends a sentence: carol@example.com.", "ends a sentence: [EMAIL]."),
    ("UPPER@EXAMPLE.COM", "[EMAIL]"),
    ("4155550132@example.com", "[EMAIL]"),
    ("mailto:dave%ops@example.io?subject=x", "mailto:[EMAIL]?subject=x"),
    ("a@b.co,c@d.co", "[EMAIL],[EMAIL]"),
]
EMAIL_NEGATIVE = [
    "no at sign here",
    "@handle on social media",
    "user@localhost",
    "user@example",
    "a@b.c",
    "email me at alice at example dot com",
    "price@ 5.00",
    "@@@",
]

PHONE_POSITIVE = [
    ("call +1 415 555 0132 today", "call [PHONE] today"),
    ("(415) 555-0132", "[PHONE]"),
    ("415-555-0132", "[PHONE]"),
    ("415.555.0132", "[PHONE]"),
    ("+44 20 7946 0958", "[PHONE]"),
    ("+49 30 901820", "[PHONE]"),
    ("+14155550132", "[PHONE]"),
    ("+1 (415) 555-0132", "[PHONE]"),
    ("+44 (0)20 7946 0958", "[PHONE]"),
    ("1-800-555-0199", "[PHONE]"),
    ("020 7946 0958", "[PHONE]"),
    ("01 23 45 67 89", "[PHONE]"),
    ("010-1234-5678", "[PHONE]"),
    ("4155550132", "[PHONE]"),
    ("tel:+33-1-23-45-67-89.", "tel:[PHONE]."),
]
PHONE_NEGATIVE = [
    "the year 2024",
    "order 123456789",
    "id 1234567890",
    "since 1700000000 (a Unix time)",
    "costs $1,299.99",
    "on 2024-06-01T12:30:45Z",
    "version 1.2.3",
    "version 10.4.1",
    "at 12:30:45",
    "pi is 3.14159265358979",
    "+100 points",
    "1+2345=2346",
    "555-0132",
    "SSN-shaped 123-45-6789",
    "07 08 2024 10",
    "4155550132.50",
]

CARD_POSITIVE = [
    ("4111111111111111", "[CARD]"),
    ("card 4111 1111 1111 1111 exp 12/29", "card [CARD] exp 12/29"),
    ("4012-8888-8888-1881", "[CARD]"),
    ("5555555555554444", "[CARD]"),
    ("2223003122003222", "[CARD]"),
    ("amex 378282246310005", "amex [CARD]"),
    ("3782 822463 10005", "[CARD]"),
    ("6011111111111117", "[CARD]"),
    ("3530111333300000", "[CARD]"),
    ("30569309025904", "[CARD]"),
    ("4222222222222", "[CARD]"),
    ("6011000000000000001", "[CARD]"),
    ("(4111111111111111)", "([CARD])"),
]
CARD_NEGATIVE = [
    "4111111111111112",
    "4111 1111 1111 1112",
    "5555555555554445",
    "411111111111",
    "41111111111111111111",
    "1234567812345670",
    "0000000000000000",
    "order_4111111111111111",
    "4111-1111 1111-1111",
    "3.4111111111111111",
    "1718000000000",
]

SECRET_POSITIVE = [
    ("key sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL", "key [SECRET]"),
    ("sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_-Ab3dEf6h", "[SECRET]"),
    ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz-0123456789AA", "[SECRET]"),
    ("AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
    ("aws_access_key_id=ASIAY34FZKBOKMUTVV7A", "aws_access_key_id=[SECRET]"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[SECRET]"),
    ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "[SECRET]"),
    ("github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789", "[SECRET]"),
    ("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "[SECRET]"),
    ("AIzaSyA1234567890abcdefghijklmnopqrstu", "[SECRET]"),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "jwt [SECRET]",
    ),
    ("Authorization: Bearer abc123def456ghi789", "Authorization: Bearer [SECRET]"),
    ("bearer 0123456789abcdef.", "bearer [SECRET]."),
    ("Bearer AbCdEfGhIjKlMnOpQrStUvWxYz", "Bearer [SECRET]"),
    ("令牌Bearer abc123def456ghi789", "令牌Bearer [SECRET]"),
    ('{"api_key": "sk-proj-abcdefghijklmnopqrstuvwxyz"}', '{"api_key": "[SECRET]"}'),
]
SECRET_NEGATIVE = [
    "pip install scikit-learn",
    "sk-learn is not a key",
    "task-force-for-the-quarterly-review",
    "AKIA1234",
    "AKIAIOSFODNN7EXAMPLEX",
    "ghp_short",
    "xoxb-123",
    "AIzaShort",
    "eyJhbGciOiJIUzI1NiJ9",
    "use Bearer authentication",
    "a bearer token is a string",
    "Bearer $OPENAI_API_KEY",
]

IP_POSITIVE = [
    ("ping 10.0.0.1 now", "ping [IP] now"),
    ("255.255.255.255", "[IP]"),
    ("0.0.0.0", "[IP]"),
    ("http://192.168.1.20:8080/path", "http://[IP]:8080/path"),
    ("10.0.0.0/8", "[IP]/8"),
    ("from 10.0.0.1-10.0.0.9.", "from [IP]-[IP]."),
    ("2001:db8::1", "[IP]"),
    ("::1", "[IP]"),
    ("[2001:db8:85a3::8a2e:370:7334]:443", "[[IP]]:443"),
    ("2001:0db8:0000:0000:0000:ff00:0042:8329", "[IP]"),
    ("fe80::1%eth0", "[IP]%eth0"),
    ("::ffff:192.0.2.1", "[IP]"),
    ("host=fe80::", "host=[IP]"),
    ("::2:3:4:5:6:7:8 and 1:2:3:4:5:6:7::", "[IP] and [IP]"),
]
IP_NEGATIVE = [
    "999.1.1.1",
    "256.0.0.1",
    "1.2.3",
    "1.2.3.4.5",
    "v1.2.3.4",
    "010.1.1.1",
    "at 12:30:45",
    "12:30",
    "mac 00:1A:2B:3C:4D:5E",
    "std::vector<int>",
    "Foo::Bar::baz",
    "dead::beef",
    "2001:db8:::1",
    "1:2:3:4:5:6:7:8:9",
]

TABLES = {
    "email": (EMAIL_POSITIVE, EMAIL_NEGATIVE),
    "phone": (PHONE_POSITIVE, PHONE_NEGATIVE),
    "card": (CARD_POSITIVE, CARD_NEGATIVE),
    "secret": (SECRET_POSITIVE, SECRET_NEGATIVE),
    "ip": (IP_POSITIVE, IP_NEGATIVE),
}


def _cases(positive: bool) -> list[tuple[str, str, str]]:
    cases: list[tuple[str, str, str]] = []
    for detector, (positives, negatives) in TABLES.items():
        if positive:
            cases.extend((detector, text, expected) for text, expected in positives)
        else:
            cases.extend((detector, text, text) for text in negatives)
    return cases


@pytest.mark.parametrize(("detector", "text", "expected"), _cases(positive=True))
def test_each_detector_replaces_what_it_detects(detector: str, text: str, expected: str) -> None:
    assert Redactor([RedactionRule(detector)]).text(text) == expected


@pytest.mark.parametrize(("detector", "text", "expected"), _cases(positive=False))
def test_each_detector_leaves_look_alikes(detector: str, text: str, expected: str) -> None:
    assert Redactor([RedactionRule(detector)]).text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The meeting moved to 2024-06-01 at 12:30:45, room 101.",
        "Install version 1.2.3 (build 4567) for $1,299.99, order 123456789.",
        "See RFC 9110 section 11.6.2; pi is 3.14159, e is 2.71828.",
        "Use std::vector<int> and Foo::Bar in C++11; the year 1999 was 19.99% better.",
        "Scores: 10-7, 21-14; ratio 3:2; time 23:59:59.999; temperature -40.5°C.",
        "会议在2024年6月1日下午3点，编号123456。",
        "Bearer authentication and sk-learn are words, not secrets.",
    ],
)
def test_plain_text_survives_every_detector(text: str) -> None:
    assert ALL.text(text) is text


def test_chatkeep_keys_are_secrets() -> None:
    secret = new_secret()
    assert ALL.text(f"my key is {secret}, keep it") == "my key is [SECRET], keep it"
    assert ALL.text(f"Authorization: Bearer {secret}") == "Authorization: Bearer [SECRET]"


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("378282246310005", True),
        ("79927398713", True),
        ("0", True),
        ("4111111111111112", False),
        ("79927398710", False),
        ("1234567812345678", False),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


def test_every_positive_match_starts_with_its_forms_lead() -> None:
    """A form's `lead` lets the engine skip the form; it must admit every real match."""
    texts = [text for positives, _ in TABLES.values() for text, _ in positives]
    for builtin in BUILTINS:
        for form in builtin.forms:
            if form.lead is None:
                continue
            regex = re.compile(form.source)
            for text in texts:
                for match in regex.finditer(text):
                    assert re.match(form.lead, match.group()), (builtin.name, match.group())
