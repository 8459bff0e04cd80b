"""What counting usage adds to each create: `UsageMeter.record`, timed in-process.

    python bench/usage_meter.py [--calls N] [--keys K]

`record` runs once per answered completion on the hot path (service/completions.py). This
times it with a usage object as the echo model and OpenAI return it, over `--keys`
distinct (project, model, key) counters in one minute (the usual case: the minute's counter
exists, one dict lookup and four additions), and the first call of a minute (a new
counter). The flush (one upsert per counter every `CHATKEEP_USAGE_FLUSH_SECONDS`) runs in
the background and is not on the request's path. The side-by-side relay run that shows
the whole create path before and after is `bench/run.py --baseline REV` (bench/README.md).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from chatkeep.store.usage import UsageCount, UsageFilter, UsageGroup, UsageTotal
from chatkeep.usage.meter import UsageMeter


class _NoStore:
    """Nothing is flushed while timing."""

    async def add_usage(self, counts: Sequence[UsageCount]) -> None: ...

    async def usage_totals(
        self, where: UsageFilter, *, width: int, group_by: Sequence[UsageGroup] = ()
    ) -> list[UsageTotal]:
        return []

    async def purge_usage(self, before: int) -> int:
        return 0


USAGE: dict[str, Any] = {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}


def _per_call_ns(calls: int, keys: int, new_minute_each_time: bool) -> float:
    meter = UsageMeter(_NoStore())
    created = int(time.time())
    names = [(f"project-{i % 7}", f"key_{i:020d}", f"model-{i % 3}") for i in range(keys)]
    started = time.perf_counter_ns()
    for n in range(calls):
        project, key_id, model = names[n % keys]
        at = created + 60 * n if new_minute_each_time else created
        meter.record(project, key_id, model, at, USAGE)
    elapsed = time.perf_counter_ns() - started
    # The loop's own cost (indexing, tuple unpacking), timed alone and taken off.
    started = time.perf_counter_ns()
    for n in range(calls):
        project, key_id, model = names[n % keys]
        at = created + 60 * n if new_minute_each_time else created
    loop = time.perf_counter_ns() - started
    return (elapsed - loop) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args()
    for label, fresh in (("counter exists (usual)", False), ("new counter each call", True)):
        best = min(_per_call_ns(args.calls, args.keys, fresh) for _ in range(5))
        print(f"UsageMeter.record, {label}: {best:.0f} ns per call (best of 5)")


if __name__ == "__main__":
    main()
