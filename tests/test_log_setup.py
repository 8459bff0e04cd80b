"""The serve command's log lines: the cheap formatter writes what the default one did."""

from __future__ import annotations

import logging

from chatkeep.log_setup import LINE_FORMAT, LineFormatter


def _record(created: float) -> logging.LogRecord:
    record = logging.LogRecord(
        "chatkeep.service.completions", logging.INFO, "", 0, "completion id=%s", ("x",), None
    )
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


def test_lines_match_the_default_formatter_across_seconds() -> None:
    cheap, default = LineFormatter(), logging.Formatter(LINE_FORMAT)
    # Within one second, across a second, back again, and a millisecond's edges.
    for created in (1796356012.0, 1796356012.999, 1796356013.0005, 1796356012.5, 1.25e9):
        record = _record(created)
        assert cheap.format(record) == default.format(record)
