"""The serving process's cyclic garbage collector, set for a server's heap.

CPython's collector runs a young-generation pass every 700 net container allocations, and
a relayed request allocates hundreds (dicts, lists, coroutines, futures, aiohttp's and
uvicorn's objects), most of them freed by reference counting with no cycle to find. Each
pass also walks whatever survived the last ones, and the older passes walk everything
imported and built at start-up: tens of thousands of long-lived objects that are never
garbage. On the relay benchmark the collector took about 13 % of a request's CPU.

`settle()` runs once a server's app is built, before it serves: a full collection, then
`gc.freeze()`, which moves everything alive into a permanent generation the collector no
longer walks, then a young threshold of `YOUNG_THRESHOLD` allocations. With `--workers`
it also runs in the parent before the fork, so the workers inherit a frozen heap: their
own collections (the one in their `settle()` included) never walk it, and so never write
to its pages, which stay shared. Cycles are still
collected, in passes about 30 times rarer; the heap between passes grows by at most that
many young objects (a few MiB), measured in bench/README.md as the server's RSS along
100,000 requests.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000  # CPython's default is 700
OLDER_THRESHOLDS = (10, 10)  # CPython's defaults


def settle() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
