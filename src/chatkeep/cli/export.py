"""`chatkeep export`: stored completions as JSON lines for fine-tuning, evals or keeping
(docs/export.md), from a local database or a running server, to a file or stdout.

Progress (lines, completions, rate) goes to stderr while stderr is a terminal, and nothing
does otherwise. A file is written under a temporary name and renamed when complete, so an
interrupted export never leaves a file that looks whole.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import IO, Any

import click

from chatkeep.cli.logs import created_after, created_before, parse_since
from chatkeep.cli.source import (
    SourceFlags,
    parse_metadata,
    parse_search_option,
    run_on_source,
    source_flags,
    source_options,
)
from chatkeep.errors import InvalidRequestError
from chatkeep.export.options import FORMATS, ExportOptions, check_format, check_seed
from chatkeep.export.source import CompletionSource
from chatkeep.export.walk import ExportCount, export_lines
from chatkeep.ids import is_completion_id
from chatkeep.protocol.queries import ListQuery


def _checked(check: Callable[[str], int], value: int) -> int:
    """A value through the route's own check, its error as click's."""
    try:
        return check(str(value))
    except InvalidRequestError as error:
        raise click.BadParameter(error.message) from None


class Progress:
    """A line on a terminal, redrawn at most a few times a second; silent elsewhere."""

    INTERVAL = 0.25

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._enabled = stream.isatty()
        self._started = time.monotonic()
        self._shown = 0.0

    def _line(self, count: ExportCount) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return (
            f"{count.lines:,} lines from {count.completions:,} completions, "
            f"{count.completions / elapsed:,.0f} completions/s"
        )

    def update(self, count: ExportCount) -> None:
        now = time.monotonic()
        if self._enabled and now - self._shown >= self.INTERVAL:
            self._shown = now
            self._stream.write(f"\r{self._line(count)}")
            self._stream.flush()

    def done(self, count: ExportCount, where: str) -> None:
        if not self._enabled:
            return
        skipped = f", {count.left_out:,} left out" if count.left_out else ""
        sampled = f", {count.not_sampled:,} not sampled" if count.not_sampled else ""
        self._stream.write(f"\r{self._line(count)}{skipped}{sampled}; written to {where}.\n")
        self._stream.flush()


@click.command()
@click.option(
    "-f",
    "--format",
    "export_format",
    required=True,
    type=click.Choice(FORMATS),
    help="openai-finetune, openai-evals or jsonl (docs/export.md).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file [stdout].",
)
@click.option("-m", "--model", default=None, help="Only completions made with this model.")
@click.option("--metadata", multiple=True, help="KEY=VALUE that completions must have; repeat.")
@click.option("-q", "--search", default=None, help='Full-text search: words, "a phrase", pre*.')
@click.option("--order", type=click.Choice(["asc", "desc"]), default="asc", show_default=True)
@click.option("--after", default=None, help="Start strictly after this completion id.")
@click.option("--since", default=None, help="Only those created then or later: 2026-01-31, 7d, ...")
@click.option("--until", default=None, help="Only those created before then (as --since).")
@click.option(
    "--only-stop", is_flag=True, help="Leave out answers whose finish_reason is not stop."
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N lines.")
@click.option(
    "--sample-rate",
    type=click.FloatRange(0, 1, min_open=True),
    default=1.0,
    help="Keep this share (0 < R <= 1) of the completions, chosen by --seed.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    callback=lambda ctx, param, value: _checked(check_seed, value),
    help="The sample's seed (a 64-bit integer) [0].",
)
@source_options
def export(
    export_format: str,
    output: Path | None,
    model: str | None,
    metadata: tuple[str, ...],
    search: str | None,
    order: str,
    after: str | None,
    since: str | None,
    until: str | None,
    only_stop: bool,
    limit: int | None,
    sample_rate: float,
    seed: int,
    **flags: Any,
) -> None:
    """Export stored completions as JSON lines (fine-tuning, evals, or the objects)."""
    source = source_flags(flags)
    if after is not None and not is_completion_id(after):
        raise click.BadParameter(f"not a completion id: {after!r}", param_hint="--after")
    options = ExportOptions(
        format=check_format(export_format),
        query=ListQuery(
            order="desc" if order == "desc" else "asc",
            after=after,
            model=model,
            metadata=parse_metadata(metadata),
            created_after=created_after(parse_since(since) if since else None),
            created_before=created_before(parse_since(until, option="--until") if until else None),
            search=parse_search_option(search),
        ),
        only_stop=only_stop,
        limit=limit,
        sample_rate=sample_rate,
        seed=seed,
    )
    progress = Progress(sys.stderr)
    if output is None:
        _to_stdout(source, options, progress)
    else:
        _to_file(output, source, options, progress)


class _ReaderLeft(Exception):
    """stdout's reader closed the pipe (`| head`); not an OSError, which would read as a
    database failure to `on_schema`."""


def _write_all(
    out: IO[bytes], options: ExportOptions, progress: Progress, where: str
) -> Callable[[CompletionSource], Coroutine[Any, Any, ExportCount]]:
    async def work(source: CompletionSource) -> ExportCount:
        count = ExportCount()
        try:
            async for piece in export_lines(source, options, count):
                out.write(piece)
                progress.update(count)
            out.flush()
        except BrokenPipeError:
            raise _ReaderLeft from None
        except OSError as error:
            raise click.ClickException(f"Cannot write {where}: {error.strerror or error}") from None
        progress.done(count, where)
        return count

    return work


def _to_stdout(source: SourceFlags, options: ExportOptions, progress: Progress) -> None:
    out = sys.stdout.buffer
    try:
        run_on_source(source, _write_all(out, options, progress, "stdout"))
    except _ReaderLeft:
        # The reader left (`| head`): stop quietly, and let nothing flush into the closed pipe.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _to_file(output: Path, source: SourceFlags, options: ExportOptions, progress: Progress) -> None:
    if output.exists() and not output.is_file():  # /dev/null, a pipe: no rename there
        with output.open("wb") as out:
            run_on_source(source, _write_all(out, options, progress, str(output)))
        return
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("wb") as out:
            run_on_source(source, _write_all(out, options, progress, str(output)))
        partial.replace(output)
    except OSError as error:
        raise click.ClickException(f"Cannot write {output}: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)
