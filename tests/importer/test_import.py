"""`chatkeep import` on both stores: from a chatkeep (ids kept, objects and messages
exactly), from an OpenAI-like source (random ids answered as they were, stored in creation
order), resuming after a failure, waiting out rate limits, and its bad flags."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from chatkeep.config import Settings
from chatkeep.export.retry import Retry
from chatkeep.http.app import create_app
from tests.api.exported import make_completions
from tests.api.keyed import run_cli, sdk
from tests.conftest import ThreadedServer
from tests.importer.fake_source import FakeOpenAI


def run_import(*args: str) -> tuple[int, str]:
    result = run_cli("import", *args)
    return result.exit_code, result.stderr


def served(database_url: str) -> Any:
    return ThreadedServer(create_app(Settings(database_url=database_url)))


@pytest.fixture
def fake() -> Iterator[tuple[FakeOpenAI, str]]:
    # Half a minute past a whole minute: `--since` takes minutes, and a start on a whole
    # minute (one run in sixty) would put a completion exactly on the bound.
    start = int(time.time()) // 60 * 60 - 200 * 60 + 30
    source = FakeOpenAI(count=150, start=start)
    with ThreadedServer(source.app()) as url:  # type: ignore[arg-type]
        yield source, url


def dumped(page: Any) -> list[dict[str, Any]]:
    return [item.model_dump() for item in page]


def test_a_chatkeep_source_is_copied_exactly_and_only_once(
    database_url: str, tmp_path: Path
) -> None:
    with served(f"sqlite:///{tmp_path}/source.db") as source_url, sdk(source_url, "k") as src:
        made = make_completions(src)
        code, err = run_import("--from", source_url, "--database-url", database_url,
                               "--metadata", "origin=old")  # fmt: skip
        assert code == 0, err
        assert "Imported 7 of 7 completions seen into 'default'" in err
        with served(database_url) as target_url, sdk(target_url, "k") as dst:
            for cid in made.all():
                before, after = (
                    src.chat.completions.retrieve(cid),
                    dst.chat.completions.retrieve(cid),
                )
                assert after.metadata == {**(before.metadata or {}), "origin": "old"}
                assert after.model_dump(exclude={"metadata"}) == before.model_dump(
                    exclude={"metadata"}
                )
                assert dumped(dst.chat.completions.messages.list(cid)) == dumped(
                    src.chat.completions.messages.list(cid)
                )
            # Again: nothing new. One more at the source: only that one.
            code, err = run_import("--from", source_url, "--database-url", database_url)
            assert code == 0 and "Imported 0 of 0" in err
            newer = make_completions(src).plain
            code, err = run_import("--from", source_url, "--database-url", database_url)
            assert code == 0 and "Imported 7 of 7" in err, err
            assert dst.chat.completions.retrieve(newer).id == newer
            assert len(list(dst.chat.completions.list())) == 14


def test_openai_ids_answer_and_keep_creation_order(
    database_url: str, fake: tuple[FakeOpenAI, str]
) -> None:
    source, url = fake
    source.rate_limited = {2}  # the second page is refused once, then served
    code, err = run_import("--from", url, "--database-url", database_url)
    assert code == 0, err
    assert "Imported 150 of 150" in err
    ids = [item["id"] for item in source.items]
    with served(database_url) as target_url, sdk(target_url, "k") as dst:
        client: openai.OpenAI = dst
        first = source.items[0]
        raw = client.chat.completions.with_raw_response.retrieve(first["id"])
        assert raw.http_response.json() == first  # the stored object exactly, original id
        page = client.chat.completions.messages.with_raw_response.list(first["id"])
        listed = page.http_response.json()["data"]
        # As the source listed them (ours add the schema's `refusal: null`).
        assert [{k: v for k, v in m.items() if k != "refusal"} for m in listed] == (
            source.messages[first["id"]]
        )
        # Listed in creation order, with original ids, whatever their letters.
        assert [c.id for c in client.chat.completions.list(limit=100)] == ids
        assert [c.id for c in client.chat.completions.list(after=ids[10], limit=5)][:5] == ids[
            11:16
        ]
        desc = client.chat.completions.list(after=ids[10], order="desc", limit=3)
        assert [c.id for c in desc.data] == ids[9:6:-1]
        ranged = client.chat.completions.list(
            limit=100, extra_query={"created_after": source.start + 60 * 100}
        )
        assert [c.id for c in ranged] == ids[101:]
        searched = client.chat.completions.list(extra_query={"search": "zebra7"})
        assert [c.id for c in searched] == [ids[7]]
        # Changed and deleted by their original ids.
        client.chat.completions.update(ids[3], metadata={"k": "v"})
        assert client.chat.completions.retrieve(ids[3]).metadata == {"k": "v"}
        client.chat.completions.delete(ids[4])
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve(ids[4])
        assert ids[4] not in [c.id for c in client.chat.completions.list(limit=100)]
    # The deleted one is not imported again (the walk goes on after the checkpoint).
    code, err = run_import("--from", url, "--database-url", database_url)
    assert code == 0 and "Imported 0 of 0" in err


def test_an_interrupted_import_goes_on_where_it_stopped(
    database_url: str, fake: tuple[FakeOpenAI, str]
) -> None:
    source, url = fake
    source.broken_from = 2  # the first page, then 500s
    code, err = run_import("--from", url, "--database-url", database_url)
    assert code == 1
    assert "The server answered 500" in err and "Stopped after importing 100" in err
    assert "run the same command again" in err
    source.broken_from = None
    requests_before = len(source.list_requests)
    code, err = run_import("--from", url, "--database-url", database_url)
    assert code == 0 and "Imported 50 of 50" in err, err
    resumed = source.list_requests[requests_before]
    assert resumed["after"] == source.items[99]["id"]
    with served(database_url) as target_url, sdk(target_url, "k") as dst:
        assert [c.id for c in dst.chat.completions.list(limit=100)] == [
            item["id"] for item in source.items
        ]


def test_since_model_and_the_project_policy(
    database_url: str, fake: tuple[FakeOpenAI, str]
) -> None:
    source, url = fake
    code, err = run_import("--from", url, "--database-url", database_url, "-m", "nope")
    assert code == 0 and "Imported 0 of 0" in err
    code, err = run_import(
        "--from", url, "--database-url", database_url, "--project", "later",
        "--since", str(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(source.start + 60 * 140 + 59))),
    )  # fmt: skip
    assert code == 0 and "Imported 9 of 150" in err and "141 older than --since" in err, err
    run_cli("projects", "set", "closed", "--store", "never", "--database-url", database_url)
    code, err = run_import("--from", url, "--database-url", database_url, "--project", "closed")
    assert code == 1 and "store policy is 'never'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Missing option '--from'"),
        (["--from", "ftp://x"], "must start with http://"),
        (["--from", "http://x", "--api-key-env", "CHATKEEP_TEST_UNSET"], "is not set"),
        (["--from", "http://x", "--project", "no spaces"], "--project"),
        (["--from", "http://x", "--metadata", "nope"], "expected KEY=VALUE"),
        (["--from", "http://x", "--since", "soon"], "--since"),
    ],
)
def test_bad_flags_are_usage_errors(args: list[str], message: str) -> None:
    result = run_cli("import", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


class _Answer:
    def __init__(self, status: int, **headers: str) -> None:
        self.status, self.headers = status, {k.replace("_", "-"): v for k, v in headers.items()}


@pytest.mark.parametrize(
    ("answer", "attempt", "low", "high"),
    [
        (_Answer(429), 1, 0.25, 0.5),
        (_Answer(503), 3, 1.0, 2.0),
        (_Answer(429, retry_after="7"), 1, 7.0, 7.0),
        (_Answer(429, retry_after_ms="1500"), 1, 1.5, 1.5),
        (_Answer(429, retry_after="Thu, 01 Jan 1970 00:00:00 GMT"), 1, 0.25, 0.5),
        (_Answer(429, retry_after="3600"), 1, 60.0, 60.0),  # capped
        (None, 2, 0.5, 1.0),  # no answer: the connection failed
    ],
)
def test_retry_waits(answer: _Answer | None, attempt: int, low: float, high: float) -> None:
    wait = Retry().after(attempt, answer)
    assert wait is not None and low <= wait <= high


@pytest.mark.parametrize(
    "answer", [_Answer(400), _Answer(401), _Answer(404), _Answer(500, x_should_retry="false")]
)
def test_answers_that_cannot_pass_are_not_retried(answer: _Answer) -> None:
    assert Retry().after(1, answer) is None
    assert Retry(attempts=3).after(3, _Answer(429)) is None
