"""How `chatkeep serve` logs: one text line per record on stderr, made cheaply.

Every relayed completion writes one INFO line, so its cost is on the hot path. Two of the
logging module's documented optimisations apply (the logging HOWTO, "Optimization"):
records do not look up the calling frame, thread or process, which no line shows. And the
time stamp, whose `strftime` was the larger part of formatting a line, is made once per
second and reused with the milliseconds appended.
"""

from __future__ import annotations

import logging
import time

LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LineFormatter(logging.Formatter):
    """`logging.Formatter` with `LINE_FORMAT`, its local-time stamp made once a second."""

    def __init__(self) -> None:
        super().__init__(LINE_FORMAT)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            # Same text as the default: "%Y-%m-%d %H:%M:%S" in local time, then ",mmm".
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"


def configure_logging(level: str) -> None:
    """Log records at `level` and above to stderr, one `LINE_FORMAT` line each."""
    logging._srcfile = None  # no caller lookup per record
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(LineFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
