"""`chatkeep logs [show ID]`: stored completions from a terminal, newest first, as `llm logs`
shows simonw/llm's; on a local database or through a running server (`cli/source.py`).

The listing walks the list API newest first and stops after `-n` completions, or at the
first one older than `--since` (ids, and so the walk, follow creation order).
"""

from __future__ import annotations

import math
import re
import time
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

import click

from chatkeep.cli.source import (
    parse_metadata,
    parse_search_option,
    run_on_source,
    source_flags,
    source_options,
)
from chatkeep.cli.transcript import as_json, summary, transcript
from chatkeep.export.source import PAGE_SIZE, CompletionSource, Conversation
from chatkeep.protocol.queries import MAX_CREATED, ListQuery

_AGO = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def created_after(since: float | None) -> int | None:
    """The `created_after` bound (whole seconds, exclusive) of "created at `since` or later"."""
    return None if since is None else max(math.ceil(since) - 1, 0)


def created_before(until: float | None) -> int | None:
    """The `created_before` bound (whole seconds, exclusive) of "created before `until`"."""
    return None if until is None else max(math.ceil(until), 0)


def parse_since(text: str, now: float | None = None, option: str = "--since") -> float:
    """A point in time, as Unix seconds: an ISO date or date-time (UTC unless it says
    otherwise), or a span back from now (`90s`, `30m`, `12h`, `7d`, `2w`)."""
    ago = _AGO.match(text.strip())
    if ago is not None:
        reference = time.time() if now is None else now
        return reference - int(ago.group(1)) * _UNIT_SECONDS[ago.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a date (2026-01-31, 2026-01-31T09:30) nor a span back "
            "from now (30m, 12h, 7d)",
            param_hint=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.timestamp() > MAX_CREATED:  # what the list's bounds take (the year 5138)
        raise click.BadParameter(f"{text!r} is too far ahead", param_hint=option)
    return moment.timestamp()


@click.group(invoke_without_command=True)
@click.option(
    "-q", "--query", "search", default=None, help='Full-text search: words, "a phrase", pre*.'
)
@click.option("-m", "--model", default=None, help="Only completions made with this model.")
@click.option("--metadata", multiple=True, help="KEY=VALUE that completions must have; repeat.")
@click.option("--since", default=None, help="Only since then: 2026-01-31, 2026-01-31T09:30, 7d.")
@click.option(
    "-n",
    "--count",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many, newest first; 0 for all.",
)
@click.option("--json", "as_jsonl", is_flag=True, help="One JSON object per line instead.")
@source_options
@click.pass_context
def logs(
    ctx: click.Context,
    /,
    search: str | None,
    model: str | None,
    metadata: tuple[str, ...],
    since: str | None,
    count: int,
    as_jsonl: bool,
    **flags: Any,
) -> None:
    """List stored completions, newest first: id, time, model, tokens, a preview.

    `chatkeep logs show ID` prints one whole conversation.
    """
    if ctx.invoked_subcommand is not None:
        return
    source = source_flags(flags)
    # A page as long as the listing (a short listing reads no more than it shows).
    page = min(count, PAGE_SIZE) if count else PAGE_SIZE
    oldest = parse_since(since) if since is not None else None
    query = ListQuery(
        page,
        order="desc",
        model=model,
        metadata=parse_metadata(metadata),
        created_after=created_after(oldest),
        search=parse_search_option(search, "--query"),
    )

    async def work(found: CompletionSource) -> int:
        shown = 0
        async with aclosing(found.walk(query)) as walk:
            async for conversation in walk:
                if oldest is not None and conversation.completion.get("created", 0) < oldest:
                    break
                click.echo(as_json(conversation) if as_jsonl else summary(conversation))
                shown += 1
                if shown == count:
                    break
        return shown

    shown = run_on_source(source, work)
    if shown == 0 and not as_jsonl:
        click.echo("No stored completions match.", err=True)


@logs.command()
@click.argument("completion_id")
@click.option("--json", "as_jsonl", is_flag=True, help="The stored object and its messages.")
@source_options
def show(completion_id: str, as_jsonl: bool, **flags: Any) -> None:
    """Print one stored conversation: messages, tool calls, the answer, usage, metadata."""
    source = source_flags(flags)

    async def work(found: CompletionSource) -> Conversation | None:
        return await found.conversation(completion_id)

    conversation = run_on_source(source, work)
    if conversation is None:
        raise click.ClickException(
            f"No stored completion with id {completion_id!r} (unknown, deleted, past its "
            "content retention, or another project's)."
        )
    if as_jsonl:
        click.echo(as_json(conversation))
        return
    for line in transcript(conversation):
        click.echo(line)
