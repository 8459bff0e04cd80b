"""Tests of redaction: the detectors, custom rules, and the message and completion shapes."""
