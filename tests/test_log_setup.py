"""The serve command's log lines: the cheap formatter writes what the default one did."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

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


def test_json_lines_name_each_field_of_the_completion_line() -> None:
    from chatkeep.log_lines import COMPLETION_LINE
    from chatkeep.log_setup import JsonLineFormatter

    args = ("chatcmpl-x", "req_1", "default", "echo-1", "echo", True, 9, None, 1.25)
    record = logging.LogRecord("chatkeep.service.completions", logging.INFO, "", 0,
                               COMPLETION_LINE, args, None)  # fmt: skip
    record.created, record.msecs = 1796356012.5, 500.0
    line = json.loads(JsonLineFormatter().format(record))
    assert line["time"] == "2026-12-04T03:46:52.500+00:00"
    assert (line["level"], line["logger"]) == ("INFO", "chatkeep.service.completions")
    assert line["message"] == COMPLETION_LINE % args
    assert line["completion_id"] == "chatcmpl-x" and line["project"] == "default"
    assert line["stream"] is True and line["prompt_tokens"] == 9
    assert line["completion_tokens"] is None and line["duration_ms"] == 1.25


def test_json_lines_carry_a_traceback_and_any_other_message() -> None:
    from chatkeep.log_setup import JsonLineFormatter

    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "", 0, "failed %s", ("once",),
                                   sys.exc_info())  # fmt: skip
    line = json.loads(JsonLineFormatter().format(record))
    assert line["message"] == "failed once" and "ValueError: boom" in line["exception"]
    assert set(line) == {"time", "level", "logger", "message", "exception"}


def test_a_server_with_json_logs_writes_only_json_lines(tmp_path: Path) -> None:
    from tests.api.test_server_process import ServerProcess

    server = ServerProcess(tmp_path, "--log-format", "json", "--database-url",
                           f"sqlite:///{tmp_path / 'json.db'}")  # fmt: skip
    try:
        with server.client() as client:
            client.chat.completions.create(
                model="echo-1", store=True, messages=[{"role": "user", "content": "SECRET-42"}]
            )
    finally:
        output = server.stop()
    lines = [json.loads(text) for text in output.splitlines() if text.strip()]
    completions = [line for line in lines if line["logger"] == "chatkeep.service.completions"]
    assert len(completions) == 1 and completions[0]["model"] == "echo-1"
    assert any(line["logger"] == "uvicorn.error" for line in lines)
    assert "SECRET-42" not in output
