"""Writing `chatkeep serve`'s log lines to stderr cheaply: gathered writes, and a direct
path for the hot path's INFO lines.

Every relayed completion writes one INFO line, and the logging module's path for it (a
`LogRecord`, the logger and handler chain, a lock, a format, a write and a flush per line)
measured about 33 µs of the relay's 365 µs per request (bench/README.md). Two changes take
most of that away, with the lines unchanged:

- `LineWriter`, the handler `chatkeep serve` installs, gathers the lines made on the event
  loop's thread and writes them together, at most `FLUSH_SECONDS` later or once `BATCH`
  wait: one system call for many lines. A WARNING or worse, and any line made off the
  loop (at start-up, in a thread), is written at once, after what waits, so lines keep
  their order. What waits is written at exit (logging's own shutdown flushes handlers)
  and before a fork; a process killed outright loses at most `FLUSH_SECONDS` of lines.
- `LineLog`, which the services use for their per-completion, per-response and
  per-request lines: given the writer, it formats the line itself, exactly as the
  handler's formatter would (the tests compare them), and hands it to the writer, with no
  record and no handler chain. The logger's level still decides whether the line is
  written. Without a writer (chatkeep used as a library, or in tests), it is a plain
  `logger.info` call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import IO, Any, Protocol

FLUSH_SECONDS = 0.05
BATCH = 256
# What one write carries at most, in bytes: PIPE_BUF on Linux, the most a pipe writes in
# one piece (a line that is not ASCII counts 4 bytes a character, UTF-8's most).
PIECE = 4096


class LineFormat(Protocol):
    """A formatter that can also make a line without a record (log_setup's formatters)."""

    def line(
        self, created: float, level: str, logger: str, template: str, args: tuple[Any, ...]
    ) -> str: ...


class LineWriter(logging.Handler):
    """A stderr handler that writes the event loop's lines in batches (the module's docstring)."""

    def __init__(self, formatter: logging.Formatter, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self._stream = stream if stream is not None else sys.stderr
        self._pending: list[str] = []
        self._loop_thread: int | None = None
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(before=self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write(line, record.levelno)

    def write(self, line: str, level: int = logging.INFO) -> None:
        """Write `line` (no newline): now, or with the next batch when on the loop."""
        with self.lock:  # type: ignore[union-attr]
            pending = self._pending
            pending.append(line)
            if level >= logging.WARNING or len(pending) >= BATCH:
                self._write_pending()
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # off the loop: nothing would flush it later
                self._write_pending()
                return
            if len(pending) == 1:  # the first to wait: its flush is due in FLUSH_SECONDS
                loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                self._write_pending()

    def _write_pending(self) -> None:
        lines, self._pending = self._pending, []
        try:
            for piece in _pieces(lines):
                self._stream.write(piece)
                self._stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not fail a request
            pass

    def close(self) -> None:
        self.flush()
        super().close()


def _pieces(lines: list[str]) -> list[str]:
    """`lines` as writes of at most `PIECE` bytes, each whole lines: a pipe takes a write
    that small in one piece, so lines from several workers sharing stderr never interleave
    inside a line (a longer line goes alone, as it always did)."""
    pieces: list[str] = []
    piece: list[str] = []
    size = 0
    for line in lines:
        length = (len(line) if line.isascii() else 4 * len(line)) + 1
        if piece and size + length > PIECE:
            pieces.append("\n".join(piece) + "\n")
            piece, size = [], 0
        piece.append(line)
        size += length
    if piece:
        pieces.append("\n".join(piece) + "\n")
    return pieces


class LineLog:
    """The services' INFO lines: straight to the `LineWriter` when there is one (the
    module's docstring), else through the logging module."""

    def __init__(self, writer: LineWriter | None = None) -> None:
        self._writer = writer
        formatter = writer.formatter if writer is not None else None
        self._format: LineFormat | None = formatter if hasattr(formatter, "line") else None

    def info(self, logger: logging.Logger, template: str, *args: Any) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        writer, format_ = self._writer, self._format
        if writer is None or format_ is None:
            logger.info(template, *args)
            return
        writer.write(format_.line(time.time(), "INFO", logger.name, template, args))
