"""The serve command's log lines: the cheap formatter writes what the default one did."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from pathlib import Path

import pytest

from chatkeep.log_setup import LINE_FORMAT, LineFormatter
from chatkeep.log_writer import BATCH, FLUSH_SECONDS, LineLog, LineWriter


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


def _writer(stream: io.StringIO, formatter: logging.Formatter) -> LineWriter:
    return LineWriter(formatter, stream=stream)


def test_the_direct_line_is_the_line_the_handler_writes_for_the_same_record() -> None:
    from chatkeep.log_lines import COMPLETION_LINE
    from chatkeep.log_setup import JsonLineFormatter

    args = ("chatcmpl-x", "req_1", "default", "echo-1", "echo", False, 9, 3, 1.25)
    for formatter in (LineFormatter(), JsonLineFormatter()):
        for created in (1796356012.0, 1796356012.9995, 1.25e9 + 0.001):
            record = logging.LogRecord("chatkeep.service.completions", logging.INFO, "", 0,
                                       COMPLETION_LINE, args, None)  # fmt: skip
            record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
            direct = formatter.line(  # type: ignore[attr-defined]
                created, "INFO", "chatkeep.service.completions", COMPLETION_LINE, args
            )
            assert direct == formatter.format(record)


def test_lines_off_the_event_loop_and_warnings_are_written_at_once() -> None:
    stream = io.StringIO()
    writer = _writer(stream, LineFormatter())
    writer.write("one")
    assert stream.getvalue() == "one\n"
    writer.write("two", logging.WARNING)
    assert stream.getvalue() == "one\ntwo\n"


def test_lines_on_the_event_loop_go_out_together_in_order_soon_after() -> None:
    stream = io.StringIO()
    writer = _writer(stream, LineFormatter())

    async def main() -> list[str]:
        seen = []
        writer.write("a")
        writer.write("b")
        seen.append(stream.getvalue())  # gathered: nothing written yet
        writer.write("c", logging.ERROR)  # written at once, after what waited
        seen.append(stream.getvalue())
        writer.write("d")
        await asyncio.sleep(FLUSH_SECONDS * 3)
        seen.append(stream.getvalue())  # the timer wrote it
        writer.write("e")
        return seen

    assert asyncio.run(main()) == ["", "a\nb\nc\n", "a\nb\nc\nd\n"]
    writer.close()  # what waits is written when logging shuts down (atexit)
    assert stream.getvalue() == "a\nb\nc\nd\ne\n"


def test_a_full_batch_is_written_without_waiting() -> None:
    stream = io.StringIO()
    writer = _writer(stream, LineFormatter())

    async def main() -> int:
        for n in range(BATCH):
            writer.write(str(n))
        return stream.getvalue().count("\n")

    assert asyncio.run(main()) == BATCH


def test_line_log_goes_through_logging_without_a_writer_and_keeps_the_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("chatkeep.test.lines")
    with caplog.at_level(logging.INFO, logger="chatkeep.test.lines"):
        LineLog().info(logger, "completion id=%s", "x")
    assert [r.getMessage() for r in caplog.records] == ["completion id=x"]

    stream = io.StringIO()
    lines = LineLog(_writer(stream, LineFormatter()))
    logger.setLevel(logging.WARNING)
    try:
        lines.info(logger, "completion id=%s", "y")  # below the logger's level: no line
        assert stream.getvalue() == ""
        logger.setLevel(logging.INFO)
        lines.info(logger, "completion id=%s", "z")
        assert stream.getvalue().endswith(" INFO chatkeep.test.lines: completion id=z\n")
    finally:
        logger.setLevel(logging.NOTSET)


def test_a_broken_stderr_does_not_fail_the_caller() -> None:
    stream = io.StringIO()
    writer = _writer(stream, LineFormatter())
    stream.close()
    writer.write("lost", logging.ERROR)  # no exception


def test_a_line_from_another_thread_is_written_at_once_even_while_lines_wait() -> None:
    import threading

    stream = io.StringIO()
    writer = _writer(stream, LineFormatter())

    async def main() -> str:
        writer.write("waits")  # on the loop: gathered
        thread = threading.Thread(target=writer.write, args=("from a thread",))
        thread.start()
        thread.join()
        return stream.getvalue()

    assert asyncio.run(main()) == "waits\nfrom a thread\n"
    writer.close()


def test_a_batch_goes_out_in_writes_of_whole_lines_within_a_pipes_atomic_size() -> None:
    from chatkeep.log_writer import PIECE

    class Counting(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[str] = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return super().write(text)

    stream = Counting()
    writer = _writer(stream, LineFormatter())
    lines = [f"completion id={n} " + "x" * 300 for n in range(40)] + ["é" * 600]

    async def main() -> None:
        for line in lines:
            writer.write(line)

    asyncio.run(main())
    writer.close()
    assert stream.getvalue() == "".join(line + "\n" for line in lines)
    assert 1 < len(stream.writes) < len(lines)
    for piece in stream.writes:
        assert piece.endswith("\n")
        assert len(piece.encode()) <= PIECE or piece.count("\n") == 1
