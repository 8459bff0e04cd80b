"""Redaction of the stored copy: secrets and personal data replaced by typed placeholders.

A project's policy lists rules (`email`, `phone`, `card`, `secret`, `ip`, or a custom
`NAME=regex`); a `Redactor` built from them rewrites the request messages and completion
that are stored, never what the client is answered with.
"""

from chatkeep.redaction.engine import Redactor
from chatkeep.redaction.rules import BUILTIN_DETECTORS, RedactionRule, format_rule, parse_rule

__all__ = ["BUILTIN_DETECTORS", "RedactionRule", "Redactor", "format_rule", "parse_rule"]
