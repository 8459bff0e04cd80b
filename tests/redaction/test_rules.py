"""Rules: the text form operators write, custom patterns, and what a Redactor refuses."""

from __future__ import annotations

import pytest

from chatkeep.redaction import (
    BUILTIN_DETECTORS,
    RedactionRule,
    Redactor,
    format_rule,
    parse_rule,
)


def test_builtin_detectors() -> None:
    assert BUILTIN_DETECTORS == ("email", "phone", "card", "secret", "ip")


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("email", RedactionRule("email")),
        ("phone", RedactionRule("phone")),
        ("card", RedactionRule("card")),
        ("secret", RedactionRule("secret")),
        ("ip", RedactionRule("ip")),
        ("EMPLOYEE_ID=E[0-9]{6}", RedactionRule("custom", "EMPLOYEE_ID", "E[0-9]{6}")),
        ("X=a=b", RedactionRule("custom", "X", "a=b")),
        ("TICKET2=(?i)tkt-\\d+", RedactionRule("custom", "TICKET2", "(?i)tkt-\\d+")),
        ("SPACED= x ", RedactionRule("custom", "SPACED", " x ")),
        ("NAMED=(?P<n>[a-z])(?P=n)", RedactionRule("custom", "NAMED", "(?P<n>[a-z])(?P=n)")),
    ],
)
def test_parse_and_format_round_trip(text: str, rule: RedactionRule) -> None:
    assert parse_rule(text) == rule
    assert format_rule(rule) == text
    assert parse_rule(format_rule(rule)) == rule


def test_parse_rule_tolerates_surrounding_spaces_in_names() -> None:
    assert parse_rule("  email ") == RedactionRule("email")
    assert parse_rule(" ACCT =A[0-9]+") == RedactionRule("custom", "ACCT", "A[0-9]+")


def test_rules_are_hashable_values() -> None:
    rules = {parse_rule("email"), parse_rule("email"), parse_rule("X=a")}
    assert rules == {RedactionRule("email"), RedactionRule("custom", "X", "a")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("emails", "email, phone, card, secret, ip"),
        ("", "email, phone, card, secret, ip"),
        ("EMAIL", "email, phone, card, secret, ip"),
        ("x=abc", "Invalid name 'x'"),
        ("email=abc", "Invalid name 'email'"),
        ("1X=abc", "Invalid name '1X'"),
        ("X-Y=abc", "Invalid name 'X-Y'"),
        ("=abc", "Invalid name ''"),
        ("X=", "X has no pattern"),
        ("BAD=[a-z", "BAD has an invalid regular expression '[a-z'"),
        ("BAD=(abc", "BAD has an invalid regular expression"),
        ("BAD=a{2,1}", "BAD has an invalid regular expression"),
        ("BAD=a(?i)b", "BAD has an invalid regular expression"),
        ("EMPTY=a*", "EMPTY ('a*') can match the empty string"),
        ("EMPTY=x?", "can match the empty string"),
        ("EMPTY=a|", "can match the empty string"),
        ("EMPTY=^", "can match the empty string"),
        ("EMPTY=\\b", "can match the empty string"),
        ("EMPTY=(?=a)", "can match the empty string"),
        ("EMPTY=(?:)", "can match the empty string"),
    ],
)
def test_parse_rule_refuses_with_a_message_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_rule(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (RedactionRule("emails"), "Unknown redaction detector 'emails'"),
        (RedactionRule("custom"), "Invalid name None"),
        (RedactionRule("custom", "X"), "X has no pattern"),
        (RedactionRule("custom", "X", "("), "X has an invalid regular expression"),
        (RedactionRule("custom", "lower", "a"), "Invalid name 'lower'"),
        (RedactionRule("custom", "E", "a*"), "can match the empty string"),
        (RedactionRule("email", "X"), "'email' is built in"),
        (RedactionRule("ip", None, "a"), "'ip' is built in"),
    ],
)
def test_redactor_and_format_rule_refuse_bad_rules(rule: RedactionRule, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Redactor([RedactionRule("email"), rule])
    assert message in str(caught.value)
    with pytest.raises(ValueError):
        format_rule(rule)


def test_repeated_rules_apply_once() -> None:
    redactor = Redactor([parse_rule("email"), parse_rule("email"), parse_rule("X=ab")])
    assert redactor.rules == (RedactionRule("email"), RedactionRule("custom", "X", "ab"))
    assert redactor.text("ab a@b.co") == "[X] [EMAIL]"


@pytest.mark.parametrize(
    ("rule", "text", "expected"),
    [
        ("TICKET=TKT-[0-9]+", "see TKT-42 and TKT-7", "see [TICKET] and [TICKET]"),
        # A case-insensitive flag applies to the rule only, not to its neighbours.
        ("TICKET=(?i)tkt-[0-9]+", "TKT-1 tkt-2", "[TICKET] [TICKET]"),
        ("V=(?x) ab \\d+  # verbose, with a comment", "ab12 ab", "[V] ab"),
        # Groups and backreferences mean the same as in the pattern alone.
        ("DOUBLE=(ab)\\1", "abab ab", "[DOUBLE] ab"),
        ("PAIR=(?P<c>[a-z])(?P=c)", "xx xy", "[PAIR] xy"),
        ("ALT=cat|dog", "cat, dog, cow", "[ALT], [ALT], cow"),
        ("UNI=Müller|東京", "Herr Müller in 東京", "Herr [UNI] in [UNI]"),
        ("NL=line\\nbreak", "a line\nbreak b", "a [NL] b"),
    ],
)
def test_custom_rules(rule: str, text: str, expected: str) -> None:
    assert Redactor([parse_rule(rule)]).text(text) == expected


def test_custom_rules_with_groups_beside_builtins_keep_their_meaning() -> None:
    redactor = Redactor(
        [
            parse_rule("card"),
            parse_rule("A=(x)\\1"),
            parse_rule("B=(y)(z)\\2"),
            parse_rule("C=(?P<n>q)(?P=n)"),
            parse_rule("D=(?P<n>w)(?P=n)"),
            parse_rule("E=(?i)e+v"),
        ]
    )
    text = "xx yzz qq ww EeV xy 4111111111111111"
    assert redactor.text(text) == "[A] [B] [C] [D] [E] xy [CARD]"
