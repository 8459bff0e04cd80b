"""How `chatkeep serve` logs: one line per record on stderr, text or JSON, made cheaply.

Every relayed completion writes one INFO line, so its cost is on the hot path. Two of the
logging module's documented optimisations apply (the logging HOWTO, "Optimization"):
records do not look up the calling frame, thread or process, which no line shows. And the
time stamp, whose `strftime` was the larger part of formatting a line, is made once per
second and reused with the milliseconds appended.

`--log-format json` writes each record as one JSON object: `time` (UTC, RFC 3339 with
milliseconds), `level`, `logger`, `message`, and for the lines `log_lines` names, each
argument under its name (`completion_id`, `project`, `prompt_tokens`...); a traceback goes
under `exception`. No line carries a key or message content in either format.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from chatkeep.log_lines import FIELDS
from chatkeep.log_writer import LineWriter

LogFormat = Literal["text", "json"]

LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LineFormatter(logging.Formatter):
    """`logging.Formatter` with `LINE_FORMAT`, its local-time stamp made once a second."""

    def __init__(self) -> None:
        super().__init__(LINE_FORMAT)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self._time(record.created)

    def line(
        self, created: float, level: str, logger: str, template: str, args: tuple[Any, ...]
    ) -> str:
        """The line `format` makes of a record with these fields (`LineLog`'s direct path)."""
        return f"{self._time(created)} {level} {logger}: {template % args}"

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            # Same text as the default: "%Y-%m-%d %H:%M:%S" in local time, then ",mmm".
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._stamp},{int((created - second) * 1000):03d}"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line = _json_fields(record.created, record.levelname, record.name, record.getMessage())
        names = FIELDS.get(record.msg) if isinstance(record.msg, str) else None
        if names is not None and isinstance(record.args, tuple):
            line.update(zip(names, record.args, strict=False))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()

    def line(
        self, created: float, level: str, logger: str, template: str, args: tuple[Any, ...]
    ) -> str:
        """The line `format` makes of a record with these fields (`LineLog`'s direct path)."""
        line = _json_fields(created, level, logger, template % args)
        names = FIELDS.get(template)
        if names is not None:
            line.update(zip(names, args, strict=False))
        return orjson.dumps(line, default=str).decode()


def _json_fields(created: float, level: str, logger: str, message: str) -> dict[str, Any]:
    return {
        "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "message": message,
    }


def configure_logging(level: str, log_format: LogFormat = "text") -> LineWriter:
    """Log records at `level` and above to stderr, one line each, in `log_format`, through
    the `LineWriter` returned (for the services' `LineLog`)."""
    logging._srcfile = None  # no caller lookup per record
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    formatter = JsonLineFormatter() if log_format == "json" else LineFormatter()
    writer = LineWriter(formatter)
    logging.basicConfig(level=level.upper(), handlers=[writer])
    return writer
