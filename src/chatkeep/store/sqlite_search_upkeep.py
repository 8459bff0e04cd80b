"""Keeping SQLite's search index cheap to delete from during a purge.

With `secure-delete` (`search_index`), FTS5 takes a deleted completion's words out of the
pages that hold them at once: for each word, it looks the word up in every segment of the
index and rewrites the page holding the completion's entry. So what a deleted completion
costs grows with the number of segments, which FTS5's merges keep at a few per level of
sizes (14 at 200,000 completions, 35 at 1,000,000). Measured on 200,000 completions
(bench/README.md), deleting the oldest ones five at a time: about 9 ms each with 14
segments, 3 ms with one, where merging the whole index into one segment took 7 s (about
65 us for each of its 109,000 pages).

So a purge that removes many completions first merges the index into one segment, in
slices the size of a purge batch (`merge_slice`), when that costs less than what the
segments would add to its deletes (`worth_merging`); an hourly purge of an hour's
completions usually does not. Merging is FTS5's own incremental `merge`, which creates,
reads and the indexer interleave with.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatkeep.store.sqlite_driver import sqlite3

# What a deleted completion costs for each segment beyond the first, and what merging
# costs a page of the index, both in milliseconds (measured: see the module's docstring).
DELETE_MS_PER_SEGMENT = 0.45
MERGE_MS_PER_PAGE = 0.065
# The first slice's pages; later ones are sized from the time the last one took.
FIRST_SLICE, MAX_SLICE = 64, 20_000

# FTS5's %_idx holds a row for each leaf page that starts a new term, keyed by segment;
# its `pgno` is the page number shifted left by one (the low bit flags a doclist index),
# and a segment's pages are numbered from where its first page is.
_SHAPE = """
SELECT count(*), coalesce(sum(pages), 0)
FROM (SELECT (max(pgno) - min(pgno)) / 2 + 1 AS pages FROM completion_search_idx GROUP BY segid)
"""
# Kept in the index's config (%_config); only `merge` commands, which only a purge runs, read it.
_USERMERGE = "INSERT INTO completion_search (completion_search, rank) VALUES ('usermerge', 2)"
_MERGE = "INSERT INTO completion_search (completion_search, rank) VALUES ('merge', ?)"


@dataclass(frozen=True, slots=True)
class IndexShape:
    segments: int
    pages: int


def shape(conn: sqlite3.Connection) -> IndexShape:
    """The search index's segments and (about) its leaf pages."""
    segments, pages = conn.execute(_SHAPE).fetchone()
    return IndexShape(int(segments), int(pages))


def worth_merging(rows: int, index: IndexShape) -> bool:
    """Whether merging the index into one segment first costs less than deleting `rows`
    completions from it as it is."""
    if index.segments < 2:
        return False
    saved = rows * (index.segments - 1) * DELETE_MS_PER_SEGMENT
    return saved > index.pages * MERGE_MS_PER_PAGE


def merge_slice(conn: sqlite3.Connection, pages: int) -> bool:
    """Merge segments, writing about `pages` pages; whether there was anything to merge.

    FTS5's `merge` with `usermerge` 2 merges the segments of any level holding two or more
    (the output goes a level up, where it may make two), so slices end in one segment
    plus what the indexer added meanwhile. A negative count would merge segments of every
    level at once, but each new segment the indexer writes between two slices makes FTS5
    start that merge over (seen at 1,000,000 completions under load: 386 segments after
    five minutes). FTS5 tells no work done by fewer than two changes (the documented test).
    """
    conn.execute(_USERMERGE)
    before = conn.total_changes
    conn.execute(_MERGE, (pages,))
    return conn.total_changes - before >= 2
