"""Fill a chatkeep store with N synthetic stored completions, quickly, for benchmarks.

    python bench/fill_store.py --database-url URL --count N [--projects P] [--seed S]
                               [--batch B] [--json FILE]

`--database-url` takes the server's own URLs (`sqlite:///file.db`, `postgresql://...`).
The schema is first brought up to date by chatkeep's migrations (the store's `upgrade()`),
then rows go in the 0004 layout (a slim record in `completions`, the stored object and
messages in `completion_content`, one `completion_metadata` row per pair) on each engine's
bulk path, bypassing the server: SQLite `executemany` in
one transaction per batch; PostgreSQL `COPY` (asyncpg `copy_records_to_table`), one
transaction per batch. A thread builds the next batch while the last one is written. A
filled database can be filled again: rows are added. Smoke mode: `--count 1000` (seconds).
`--days D` mints the ids over the last D days (evenly, in id order) instead of now.

Output: progress on stderr; on stdout one line `filled N completions in S s (R rows/s);
database size X MiB`, and with `--json FILE` the same as JSON (count, seconds,
rows_per_second, metadata_rows, database_bytes, engine). The size is measured after a
checkpoint (SQLite: file plus WAL) or after VACUUM ANALYZE (PostgreSQL: pg_database_size,
which is what autovacuum would reach on its own; SQLite is not analysed, as the server
never analyses it).

Each row is what `POST /v1/chat/completions` with `store: true` stores: the stored object
built by the service's `build_stored_completion`, ids from `CompletionIdGenerator` (so
cursors work), 3-5 input messages and a reply of a few hundred tokens in all, and 3-5
metadata pairs: `env` (prod 70 %, staging 20 %, dev 10 %), `team` (24 teams, Zipf), `user`
(20,000 users, Zipf) on every row, plus up to two of `feature` (40 values), `experiment`
(12 values) and `trace_id` (unique). `TYPICAL_FILTERS` (env and team: about 1-10 % of rows
each) and `RARE_FILTER` (env=prod and a user in the Zipf tail: a handful of rows, the worst
case for a filter whose first pair matches most rows) are what `read_latency.py` asks for.
Projects: `default` (which a server without API keys serves), then `project-01`, ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson

from chatkeep.config import Settings
from chatkeep.ids import BASE62, COMPLETION_BODY_LENGTH, COMPLETION_PREFIX, CompletionIdGenerator
from chatkeep.protocol.requests import ParsedCreateRequest, parse_create_request
from chatkeep.service.stored import build_stored_completion
from chatkeep.store import postgres_partitions as partitions
from chatkeep.store.factory import open_store, sqlite_path
from chatkeep.store.schema import dump_json, record_columns
from chatkeep.store.search_index import (
    POSTGRES_VECTOR_SQL,
    SLOT_BITS,
    SQLITE_ROWID_SQL,
    id_key,
    search_strings,
)
from chatkeep.store.sqlite_driver import sqlite3
from chatkeep.store.sqlite_search import index_pending

DEFAULT_PROJECT = "default"
MODELS = (
    ("gpt-4o", 40),
    ("gpt-4o-mini", 30),
    ("llama-3.1-8b", 15),
    ("claude-sonnet", 8),
    ("qwen2.5-72b", 5),
    ("mistral-small", 2),
)
ENVS = (("prod", 70), ("staging", 20), ("dev", 10))
TEAM_COUNT, USER_COUNT, FEATURE_COUNT, EXPERIMENT_COUNT = 24, 20_000, 40, 12
TYPICAL_FILTERS = [{"env": "prod", "team": f"team-{i:02d}"} for i in range(8)]
RARE_FILTER = {"env": "prod", "user": f"user-{USER_COUNT - 1:05d}"}
SYSTEM_PROMPT = "You are a helpful assistant for the {} team. Answer briefly and cite sources."
GREETING = "Hello! How can I help you today?"


def zipf(names: list[str], exponent: float = 1.0) -> list[tuple[str, float]]:
    return [(name, 1.0 / (rank + 1) ** exponent) for rank, name in enumerate(names)]


class Sampler:
    """A weighted choice in one `randrange`: a table holding each value by its weight."""

    def __init__(self, weighted: list[tuple[str, float]] | tuple[tuple[str, int], ...]) -> None:
        total = sum(weight for _, weight in weighted)
        size = max(100_000, len(weighted) * 10)
        self.table: list[str] = []
        for value, weight in weighted:
            self.table += [value] * max(1, round(size * weight / total))

    def __call__(self, rng: random.Random) -> str:
        return self.table[rng.randrange(len(self.table))]


class TextPool:
    """Paragraphs of pseudo-words, each with its token count under chatkeep's tokenizer
    (a word, or a punctuation mark, is one token)."""

    def __init__(self, rng: random.Random, size: int = 4096) -> None:
        syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
        words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(5000)]
        self.paragraphs: list[tuple[str, int]] = []
        for _ in range(size):
            count = int(rng.triangular(15, 220, 60))
            text = " ".join(rng.choices(words, k=count)).capitalize() + "."
            self.paragraphs.append((text, count + 1))

    def pick(self, rng: random.Random) -> tuple[str, int]:
        return self.paragraphs[rng.randrange(len(self.paragraphs))]


# project, id, model, created, metadata, usage, finish_reasons, latency_ms
Record = tuple[str, str, str, int, str, str | None, str, int]
# project, id, completion, messages, the searched strings (a JSON array)
Content = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Rows:
    """One batch, as the three tables' rows: records, their content, their filter pairs."""

    records: list[Record]
    content: list[Content]
    metadata: list[tuple[str, str, str, str]]


def request_templates() -> list[ParsedCreateRequest]:
    """Create requests as the service parsed them: what the stored object's echo fields
    (temperature, top_p, user, tools, ...) come from. Messages are filled per row."""
    tool = {
        "type": "function",
        "function": {
            "name": "search_docs",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
    variants: list[dict[str, Any]] = [
        {},
        {"temperature": 0.2},
        {"temperature": 0.7, "top_p": 0.9},
        {"user": "user-42"},
        {"tools": [tool], "tool_choice": "auto"},
        {"response_format": {"type": "json_object"}, "seed": 7},
    ]
    messages = [{"role": "user", "content": "template"}]
    return [
        parse_create_request(orjson.dumps({"model": "m", "messages": messages, **variant}))
        for variant in variants
    ]


class Generator:
    """Builds rows; deterministic for a seed, apart from ids, request ids and seeds."""

    def __init__(self, seed: int, projects: int, span: tuple[int, int] | None = None) -> None:
        self.rng = random.Random(seed)
        # (first ms, ms per row): ids minted at those times instead of now, so that the
        # rows spread over days as a server's would (`--days`), still in id order.
        self.span = span
        self.minted = 0
        self.text = TextPool(self.rng)
        self.ids = CompletionIdGenerator()
        self.models = Sampler(MODELS)
        self.envs = Sampler(ENVS)
        self.teams = Sampler(zipf([f"team-{i:02d}" for i in range(TEAM_COUNT)]))
        self.users = Sampler(zipf([f"user-{i:05d}" for i in range(USER_COUNT)]))
        self.features = Sampler(zipf([f"feature-{i:02d}" for i in range(FEATURE_COUNT)], 0.7))
        self.experiments = [f"exp-{i:02d}" for i in range(EXPERIMENT_COUNT)]
        self.projects = [DEFAULT_PROJECT] + [f"project-{i:02d}" for i in range(1, projects)]
        self.templates = request_templates()

    def metadata(self) -> dict[str, str]:
        rng = self.rng
        team = self.teams(rng)
        pairs = {"env": self.envs(rng), "team": team, "user": self.users(rng)}
        for key in rng.sample(("feature", "experiment", "trace_id"), rng.randrange(3)):
            if key == "feature":
                pairs[key] = self.features(rng)
            elif key == "experiment":
                pairs[key] = rng.choice(self.experiments)
            else:
                pairs[key] = f"{rng.getrandbits(64):016x}"
        return pairs

    def messages(self, team: str) -> tuple[list[dict[str, Any]], int]:
        """3-5 input messages, a system prompt then turns ending with the user's, and their
        prompt tokens (about as the echo backend counts: 3 a message, its role, its text)."""
        system = SYSTEM_PROMPT.format(team)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        tokens = 3 + 4 + len(system.split()) + 2
        turns = self.rng.randint(2, 4)
        for index in range(turns):
            role = "user" if (turns - 1 - index) % 2 == 0 else "assistant"
            if index == 0 and role == "assistant":
                text, text_tokens = GREETING, 8
            else:
                text, text_tokens = self.text.pick(self.rng)
            messages.append({"role": role, "content": text})
            tokens += 4 + text_tokens
        return messages, tokens

    def new_id(self) -> tuple[str, int]:
        if self.span is None:
            return self.ids.new_id()
        first_ms, step_ms = self.span
        created_ms = first_ms + int(self.minted * step_ms)
        self.minted += 1
        value = (created_ms << 120) | self.rng.getrandbits(120)
        digits = []
        for _ in range(COMPLETION_BODY_LENGTH):
            value, digit = divmod(value, 62)
            digits.append(BASE62[digit])
        return COMPLETION_PREFIX + "".join(reversed(digits)), created_ms

    def row(self, project: str) -> tuple[Record, Content, dict[str, str]]:
        rng = self.rng
        completion_id, created_ms = self.new_id()
        model = self.models(rng)
        metadata = self.metadata()
        messages, prompt_tokens = self.messages(metadata["team"])
        reply, reply_tokens = self.text.pick(rng)
        template = self.templates[rng.randrange(len(self.templates))]
        completion: Any = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created_ms // 1000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": reply,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": reply_tokens,
                "total_tokens": prompt_tokens + reply_tokens,
            },
            "service_tier": "default",
            "system_fingerprint": "fp_chatkeep",
        }
        stored = build_stored_completion(
            completion,
            template.params,
            template.body,
            request_id=self.ids.request_id(),
            seed=template.params.seed or self.ids.seed(),
        )
        usage, reasons = record_columns(stored)
        latency_ms = int(rng.triangular(150, 6000, 900))
        record = (project, completion_id, model, created_ms // 1000,
                  dump_json(metadata, "metadata"), usage, reasons, latency_ms)  # fmt: skip
        content = (
            project,
            completion_id,
            dump_json(stored, "completion"),
            dump_json(messages, "messages"),
            # What the store indexes for search (PostgreSQL takes it beside the row).
            orjson.dumps(search_strings(messages, stored)).decode(),
        )
        return record, content, metadata

    def batch(self, size: int) -> Rows:
        rows = Rows([], [], [])
        for _ in range(size):
            project = self.projects[self.rng.randrange(len(self.projects))]
            record, content, metadata = self.row(project)
            rows.records.append(record)
            rows.content.append(content)
            rows.metadata.extend((project, record[1], k, v) for k, v in metadata.items())
        return rows


def batches(generator: Generator, count: int, size: int) -> Iterator[Rows]:
    """The batches, built on a thread of their own, one ahead of the writer."""
    ready: queue.Queue[Rows | BaseException | None] = queue.Queue(maxsize=2)

    def produce() -> None:
        try:
            left = count
            while left > 0:
                ready.put(generator.batch(min(size, left)))
                left -= size
            ready.put(None)
        except BaseException as exc:  # handed to the writer, which re-raises it
            ready.put(exc)

    threading.Thread(target=produce, daemon=True).start()
    while (item := ready.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


class Progress:
    def __init__(self, count: int) -> None:
        self.count, self.done, self.started = count, 0, time.perf_counter()
        self._shown = self.started

    def add(self, rows: int) -> None:
        self.done += rows
        now = time.perf_counter()
        if now - self._shown >= 5 or self.done == self.count:
            self._shown = now
            rate = self.done / (now - self.started)
            print(f"  {self.done:,}/{self.count:,} ({rate:,.0f} rows/s)", file=sys.stderr)


RECORD_COLUMNS = [
    "project",
    "id",
    "model",
    "created",
    "metadata",
    "usage",
    "finish_reasons",
    "latency_ms",
]
STAGED_COLUMNS = ["project", "id", "completion", "messages", "strings"]
_POSTGRES_CONTENT = f"""
WITH staged AS (DELETE FROM fill_content RETURNING *)
INSERT INTO completion_content (project, id, completion, messages, search)
SELECT project, id, completion::json, messages::json, {
    POSTGRES_VECTOR_SQL.format(strings="strings")
} FROM staged"""
METADATA_COLUMNS = ["project", "completion_id", "key", "value"]
_SQLITE_RECORDS = (
    f"INSERT INTO completions ({', '.join(RECORD_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# As the store inserts it: the rowid places the row in the search index's id order.
_SQLITE_CONTENT = (
    "INSERT INTO completion_content (rowid, project, id, completion, messages) "
    f"VALUES ({SQLITE_ROWID_SQL}, ?2, ?3, ?4, ?5)"
)
_SQLITE_METADATA = (
    "INSERT INTO completion_metadata (project, completion_id, key, value) VALUES (?, ?, ?, ?)"
)


def fill_sqlite(path: str, rows: Iterator[Rows], progress: Progress) -> int:
    """Insert every batch in its own transaction; returns the database's size in bytes."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # A loader's settings, not the server's: no fsync per batch, a large page cache so
        # the metadata index stays in memory, and the WAL folded back in at the end.
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -1048576")
        conn.execute("PRAGMA foreign_keys = OFF")  # the rows are consistent by construction
        for batch in rows:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_SQLITE_RECORDS, batch.records)
            conn.executemany(
                _SQLITE_CONTENT,
                [(id_key(row[1]) << SLOT_BITS, *row[:4]) for row in batch.content],
            )
            conn.executemany(_SQLITE_METADATA, batch.metadata)
            conn.execute("COMMIT")
            progress.add(len(batch.records))
        # The search index of what was added, as the server's indexer makes it, in batches.
        while True:
            conn.execute("BEGIN IMMEDIATE")
            indexed = index_pending(conn)
            conn.execute("COMMIT")
            if not indexed:
                break
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return sum(
        os.path.getsize(path + suffix)
        for suffix in ("", "-wal", "-shm")
        if os.path.exists(path + suffix)
    )


async def fill_postgres(
    url: str, rows: Iterator[Rows], progress: Progress, first_ms: int | None
) -> int:
    """COPY every batch in its own transaction; returns pg_database_size after VACUUM.
    The week partitions of the span (from `first_ms`, or now) are made first: COPY does
    not make them, as a server's insert does."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        if await conn.fetchval(
            "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'completions'::regclass"
        ):
            today = datetime.now(UTC).date()
            week = partitions.week_of_day(
                today if first_ms is None else datetime.fromtimestamp(first_ms / 1000, UTC).date()
            )
            await partitions.ensure(
                conn, [week + n * partitions.WEEK for n in range((today - week).days // 7 + 2)]
            )
        await conn.execute(
            "CREATE TEMPORARY TABLE fill_content "
            "(project text, id text, completion text, messages text, strings text)"
        )
        loop = asyncio.get_running_loop()
        while (batch := await loop.run_in_executor(None, next, rows, None)) is not None:
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "completions", records=batch.records, columns=RECORD_COLUMNS
                )
                # Through a staging table: COPY cannot make the search vector.
                await conn.copy_records_to_table(
                    "fill_content", records=batch.content, columns=STAGED_COLUMNS
                )
                await conn.execute(_POSTGRES_CONTENT)
                await conn.copy_records_to_table(
                    "completion_metadata", records=batch.metadata, columns=METADATA_COLUMNS
                )
            progress.add(len(batch.records))
        print("  VACUUM ANALYZE ...", file=sys.stderr)
        await conn.execute("VACUUM ANALYZE completions, completion_content, completion_metadata")
        size: int = await conn.fetchval("SELECT pg_database_size(current_database())")
        return size
    finally:
        await conn.close()


def fill(
    url: str,
    count: int,
    projects: int,
    seed: int,
    batch: int,
    days: float = 0,
    through: str | None = None,
) -> dict[str, Any]:
    """Bring the schema up to date (or up to `through`, to fill an older layout), fill,
    and return the measurements."""
    applied = asyncio.run(open_store(Settings(database_url=url)).upgrade(through=through))
    if applied:
        print(f"  migrations applied: {', '.join(applied)}", file=sys.stderr)
    progress = Progress(count)
    span = None
    if days > 0:  # the last `days` days, ending now, evenly
        now_ms = time.time_ns() // 1_000_000
        span = (now_ms - int(days * 86_400_000), days * 86_400_000 / count)
    rows = batches(Generator(seed, projects, span), count, batch)
    if url.startswith("sqlite:///"):
        engine, size = "sqlite", fill_sqlite(sqlite_path(url), rows, progress)
    else:
        first_ms = None if span is None else span[0]
        engine, size = "postgres", asyncio.run(fill_postgres(url, rows, progress, first_ms))
    seconds = time.perf_counter() - progress.started
    return {
        "engine": engine,
        "count": count,
        "projects": projects,
        "seconds": round(seconds, 2),
        "rows_per_second": round(count / seconds),
        "database_bytes": size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fill a chatkeep store with synthetic data.")
    parser.add_argument("--database-url", required=True, help="sqlite:///... or postgresql://...")
    parser.add_argument("--count", type=int, required=True, help="completions to add")
    parser.add_argument("--projects", type=int, default=1, help="projects to spread them over")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic data")
    parser.add_argument("--batch", type=int, default=20_000, help="completions per transaction")
    parser.add_argument(
        "--days", type=float, default=0, help="spread the ids over the last DAYS days (0: now)"
    )
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)
    if args.count < 1 or args.projects < 1 or args.batch < 1:
        parser.error("--count, --projects and --batch must be at least 1")
    try:
        result = fill(
            args.database_url, args.count, args.projects, args.seed, args.batch, args.days
        )
    except (OSError, ValueError, sqlite3.Error, asyncpg.PostgresError) as error:
        print(f"fill_store: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(
        f"filled {result['count']:,} completions in {result['seconds']} s "
        f"({result['rows_per_second']:,} rows/s); "
        f"database size {result['database_bytes'] / 2**20:,.1f} MiB"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
