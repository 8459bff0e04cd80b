"""Project policies: parsing and its refusals, what `store` decides, the retention cutoffs,
and how a server's policy book reads, caches and survives an unreadable database."""

from __future__ import annotations

from typing import Any

import pytest

from chatkeep.errors import StoreUnavailableError
from chatkeep.ids import completion_id_floor
from chatkeep.lifecycle.book import PolicyBook
from chatkeep.lifecycle.policy import (
    DEFAULT_POLICY,
    PolicyError,
    ProjectPolicy,
    format_duration,
    parse_duration,
)

pytestmark = pytest.mark.anyio
DAY = 86400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * DAY),
        ("12h", 12 * 3600),
        ("90m", 5400),
        ("2w", 14 * DAY),
        ("60s", 60),
        ("forever", None),
    ],
)
def test_durations(text: str, seconds: int | None) -> None:
    assert parse_duration("x", text) == seconds
    assert parse_duration("x", format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    "text", ["30", "30D", "0d", "-1d", "1.5d", "d", "", " 30d", 30, None, "59s"]
)
def test_bad_durations(text: object) -> None:
    with pytest.raises(PolicyError, match="x must be"):
        parse_duration("x", text)


def test_defaults_are_openais() -> None:
    assert DEFAULT_POLICY.describe() == {
        "store": "request",
        "store_content": True,
        "content_retention": "30d",
        "record_retention": "30d",
        "redact": [],
    }
    assert DEFAULT_POLICY.redactor is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"colour": "red"}, "Unknown project setting 'colour'"),
        ({"store": "sometimes"}, "store must be one of"),
        ({"store": True}, "store must be one of"),
        ({"store_content": "false"}, "store_content must be true or false"),
        ({"content_retention": "7d", "record_retention": "1d"}, "shorter than"),
        ({"content_retention": "forever", "record_retention": "1d"}, "must be 'forever'"),
        ({"redact": "email"}, "redact must be a list"),
        ({"redact": ["email", 3]}, "redact must be a list"),
        ({"redact": ["nope"]}, "redact: "),
        ({"redact": ["BAD=("]}, "redact: "),
    ],
)
def test_bad_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        ProjectPolicy.parse(settings)


@pytest.mark.parametrize(
    ("mode", "asked", "stored"),
    [
        ("request", True, True),
        ("request", False, False),
        ("request", None, False),
        ("always", None, True),
        ("always", False, True),
        ("always", True, True),
        ("never", True, False),
        ("never", None, False),
    ],
)
def test_what_store_decides(mode: str, asked: bool | None, stored: bool) -> None:
    assert ProjectPolicy.parse({"store": mode}).decides_store(asked) is stored


def test_cutoffs_are_the_id_floors_of_each_window() -> None:
    now = 1_800_000_000_000
    policy = ProjectPolicy.parse({"content_retention": "1d", "record_retention": "7d"})
    cutoffs = policy.cutoffs(now)
    assert cutoffs.content_before == completion_id_floor(now - DAY * 1000)
    assert cutoffs.records_before == completion_id_floor(now - 7 * DAY * 1000)
    forever = ProjectPolicy.parse({"content_retention": "forever"}).cutoffs(now)
    assert (forever.content_before, forever.records_before) == (None, None)


def test_id_floors_sort_with_the_ids_minted_then() -> None:
    from chatkeep.ids import CompletionIdGenerator

    minted, ms = CompletionIdGenerator().new_id()
    assert completion_id_floor(ms) <= minted < completion_id_floor(ms + 1)
    assert len(completion_id_floor(ms)) == len(minted)


class FakeSource:
    def __init__(self) -> None:
        self.settings: dict[str, dict[str, Any]] = {}
        self.reads = 0
        self.down = False

    async def all_settings(self) -> dict[str, dict[str, Any]]:
        self.reads += 1
        if self.down:
            raise StoreUnavailableError("down")
        return self.settings

    async def put_settings(self, name: str, settings: dict[str, Any], updated: int) -> None:
        raise NotImplementedError

    async def keyed_projects(self) -> dict[str, int]:
        raise NotImplementedError


async def test_the_book_reads_once_per_ttl_and_keeps_the_last_read_when_down() -> None:
    source, now = FakeSource(), [0.0]
    source.settings = {"a": {"store": "always"}, "broken": {"store": "sometimes"}}
    declared = {"d": ProjectPolicy.parse({"store": "never"})}
    book = PolicyBook(source, declared, ttl=5, clock=lambda: now[0])
    await book.load()
    assert (await book.policy_for("a")).store == "always"
    assert (await book.policy_for("broken")) == DEFAULT_POLICY  # logged, defaults apply
    assert (await book.policy_for("d")).store == "never"
    assert (await book.policy_for("nobody")) == DEFAULT_POLICY
    assert source.reads == 1
    source.settings = {"a": {"store": "never"}, "d": {"store": "always"}}
    now[0] = 4.9
    assert (await book.policy_for("a")).store == "always" and source.reads == 1
    now[0] = 5.0
    assert (await book.policy_for("a")).store == "never" and source.reads == 2
    assert (await book.policy_for("d")).store == "never"  # the file wins
    source.down, now[0] = True, 10.0
    assert (await book.policy_for("a")).store == "never"  # the last read stays
    with pytest.raises(StoreUnavailableError):
        await book.snapshot()  # a purge needs today's policies, not a guess


async def test_a_first_read_that_fails_stops_the_start() -> None:
    source = FakeSource()
    source.down = True
    with pytest.raises(StoreUnavailableError):
        await PolicyBook(source, {}, ttl=5).load()
