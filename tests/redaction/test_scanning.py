"""The scan across detectors: overlaps, precedence, neighbours, Unicode, size, fast path."""

from __future__ import annotations

import pytest

from chatkeep.redaction import BUILTIN_DETECTORS, RedactionRule, Redactor, parse_rule

ALL = Redactor([RedactionRule(name) for name in BUILTIN_DETECTORS])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Adjacent matches of different detectors, with only punctuation between.
        ("alice@example.com,415-555-0132;10.0.0.1", "[EMAIL],[PHONE];[IP]"),
        ("(415) 555-0132/4111111111111111", "[PHONE]/[CARD]"),
        ("10.0.0.1:8080 2001:db8::1", "[IP]:8080 [IP]"),
        ("a@b.co b@c.co c@d.co", "[EMAIL] [EMAIL] [EMAIL]"),
        # Longest match at a place: an email whose local part reads as a phone number.
        ("4155550132@example.com", "[EMAIL]"),
        # A key wins over the numbers inside it, wherever they are.
        ("key=sk-proj-4111111111111111abcdEFGH", "key=[SECRET]"),
        ("sk-4155550132-4111111111111111-10-0-0-1 10.0.0.1", "[SECRET] [IP]"),
        ("xoxb-123456789012-4111111111111111-abc", "[SECRET]"),
        ("AKIA4111111111111111", "[SECRET]"),
        # Same place, same length: a card number given as a bearer token is a secret.
        ("Bearer 4111111111111111", "Bearer [SECRET]"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "Bearer [SECRET]"),
        # A rejected candidate does not hide a valid one at the same place.
        ("415 555 0132 4111", "[PHONE] 4111"),
        # ... nor leave a valid-looking tail of itself behind.
        ("4111 1111 1111 1112", "4111 1111 1111 1112"),
        ("1.2.3.4.5", "1.2.3.4.5"),
    ],
)
def test_overlapping_and_adjacent_matches(text: str, expected: str) -> None:
    assert ALL.text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("请联系alice@example.com或拨打415-555-0132谢谢", "请联系[EMAIL]或拨打[PHONE]谢谢"),
        ("サーバーは10.0.0.1です。", "サーバーは[IP]です。"),
        ("Ключ: sk-proj-abcdefghijklmnopqrstuvwxyz012345 — не показывать", None),
        ("carte 4111 1111 1111 1111 ✓ 🎉", "carte [CARD] ✓ 🎉"),
        ("📞+44 20 7946 0958📞", "📞[PHONE]📞"),
        ("مرحبا bob@example.org شكرا", "مرحبا [EMAIL] شكرا"),
        ("é2001:db8::1é", "é[IP]é"),
    ],
)
def test_unicode_around_matches(text: str, expected: str | None) -> None:
    if expected is None:
        expected = "Ключ: [SECRET] — не показывать"
    assert ALL.text(text) == expected


def test_only_the_enabled_detectors_apply() -> None:
    text = "alice@example.com 415-555-0132 10.0.0.1"
    assert Redactor([RedactionRule("ip")]).text(text) == "alice@example.com 415-555-0132 [IP]"
    assert Redactor([RedactionRule("email")]).text(text) == "[EMAIL] 415-555-0132 10.0.0.1"
    assert Redactor([]).text(text) is text


def test_custom_rules_take_part_in_the_same_scan() -> None:
    redactor = Redactor(
        [parse_rule("email"), parse_rule("EMPLOYEE=EMP-[0-9]{6}"), parse_rule("card")]
    )
    assert (
        redactor.text("EMP-123456 wrote to hr@example.com about EMP-654321, card 4111111111111111")
        == "[EMPLOYEE] wrote to [EMAIL] about [EMPLOYEE], card [CARD]"
    )


def test_a_custom_rule_may_match_inside_words() -> None:
    # Built-in detectors do not start inside a word; an operator's pattern says for itself.
    redactor = Redactor([parse_rule("PROJECT=apollo")])
    assert (
        redactor.text("Apollo, apollo and preapollonian")
        == "Apollo, [PROJECT] and pre[PROJECT]nian"
    )


def test_the_longest_match_wins_between_custom_and_builtin() -> None:
    redactor = Redactor([parse_rule("ip"), parse_rule("HOST=10\\.0\\.0\\.1:[0-9]+")])
    assert redactor.text("10.0.0.1:8080 and 10.0.0.1") == "[HOST] and [IP]"
    shorter = Redactor([parse_rule("email"), parse_rule("USER=alice")])
    assert shorter.text("alice@example.com, alice") == "[EMAIL], [USER]"


def test_a_tie_in_length_goes_to_the_secret_then_to_the_custom_rule() -> None:
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz"
    both = Redactor([parse_rule("KEY=sk-proj-[a-z]+"), parse_rule("secret")])
    assert both.text(key) == "[SECRET]"
    first = Redactor([parse_rule("A=[0-9]{16}"), parse_rule("card"), parse_rule("B=[0-9]{16}")])
    assert first.text("4111111111111111") == "[A]"


def test_nothing_found_returns_the_very_same_string() -> None:
    text = "Nothing to see here: version 1.2.3, 2024-06-01, order 123456789."
    assert ALL.text(text) is text
    assert ALL.text("") == ""


def test_a_megabyte_of_text_is_redacted() -> None:
    chunk = (
        "Lorem ipsum dolor sit amet, 2024-06-01 12:30:45, v1.2.3, order 123456789; "
        "contact alice@example.com or +1 415 555 0132 from 10.0.0.1 with "
        "sk-proj-abcdefghijklmnopqrstuvwxyz and card 4111 1111 1111 1111. 中文文本。\n"
    )
    text = chunk * (1_000_000 // len(chunk) + 1)
    redacted = ALL.text(text)
    assert redacted.count("[EMAIL]") == text.count("alice@example.com")
    assert redacted.count("[CARD]") == redacted.count("[SECRET]") == text.count("\n")
    assert "alice@" not in redacted and "4111" not in redacted


@pytest.mark.parametrize(
    "unit", ["a", "4", "1.", "a@", ":", "+1 ", "eyJaaaaa.", "Bearer ", "a.b-c+", "0 ", "::1:"]
)
def test_a_megabyte_of_pathological_text_finishes(unit: str) -> None:
    # No timing assertion: a backtracking blow-up would not finish at all.
    text = unit * (1_000_000 // len(unit))
    assert isinstance(ALL.text(text), str)
