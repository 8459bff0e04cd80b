"""Project policies, retention and redaction, through the official client, on both stores.

Policies are set with the real `chatkeep projects set` command on the server's database;
the server reads them again at once (`auth_cache_seconds=0`). Retention runs as a second
server on the same database would run it, with a clock moved days ahead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.ids import completion_id_floor
from chatkeep.lifecycle.book import PolicyBook
from chatkeep.lifecycle.retention import Retention
from chatkeep.store.base import NewCompletion, PurgeCount
from chatkeep.store.factory import open_store, sqlite_path
from chatkeep.store.projects import project_settings_for
from tests.api.keyed import create_key, keyed_server, run_cli, sdk
from tests.api.test_usage import create_admin_key
from tests.conftest import ThreadedServer

DAY = 86400
USER = [{"role": "user", "content": "hello"}]
SECRETS = (
    "write to bob@example.com or call +1 415 555 0132; key sk-proj-Ab3dEfGh1jKlMnOpQrStUvWx "
    "and employee E123456"
)
FOUND = ("bob@example.com", "415 555 0132", "sk-proj-Ab3dEfGh1jKlMnOpQrStUvWx", "E123456")


@contextmanager
def served(database_url: str) -> Iterator[openai.OpenAI]:
    settings = Settings(database_url=database_url, auth_cache_seconds=0, purge_interval_seconds=0)
    with ThreadedServer(create_app(settings)) as url, sdk(url, "sk-open") as client:
        yield client


def set_policy(database_url: str, *options: str, project: str = "default") -> None:
    result = run_cli("projects", "set", project, *options, "--database-url", database_url)
    assert result.exit_code == 0, result.output


def purge_at(database_url: str, seconds_ahead: float) -> dict[str, PurgeCount]:
    """Run retention as another server would, with the clock `seconds_ahead` in the future."""

    async def run() -> dict[str, PurgeCount]:
        store = open_store(Settings(database_url=database_url))
        await store.open()
        try:
            book = PolicyBook(project_settings_for(store), {}, ttl=0)
            retention = Retention(store, book, clock=lambda: time.time() + seconds_ahead)
            found = await retention.purge()
            assert found is not None
            return found
        finally:
            await store.close()

    return asyncio.run(run())


def raw_rows(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows straight from the database, around the store."""
    if database_url.startswith("sqlite"):
        from chatkeep.store.sqlite_driver import sqlite3

        conn = sqlite3.connect(sqlite_path(database_url))
        try:
            return list(conn.execute(sql.replace("$1", "?"), params))
        finally:
            conn.close()

    async def fetch() -> list[tuple[Any, ...]]:
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(database_url)
        try:
            return [tuple(row) for row in await conn.fetch(sql, *params)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def stored_header(response: Any) -> str | None:
    value: str | None = response.headers.get("x-chatkeep-stored")
    return value


def test_policy_always_stores_a_request_that_did_not_ask(database_url: str) -> None:
    set_policy(database_url, "--store", "always")
    with served(database_url) as client:
        raw = client.chat.completions.with_raw_response.create(model="m", messages=USER)
        assert stored_header(raw) == "true"
        plain = raw.parse()
        assert client.chat.completions.retrieve(plain.id).id == plain.id
        with client.chat.completions.with_streaming_response.create(
            model="m", messages=USER, stream=True
        ) as streamed:
            assert stored_header(streamed) == "true"
            ids = {
                line.split('"id":"')[1].split('"')[0]
                for line in streamed.iter_lines()
                if '"id"' in line
            }
        (streamed_id,) = ids
        assert client.chat.completions.retrieve(streamed_id).id == streamed_id
        # A request that asked is stored as asked: no header.
        asked = client.chat.completions.with_raw_response.create(
            model="m", messages=USER, store=True
        )
        assert stored_header(asked) is None


def test_policy_never_answers_store_true_and_keeps_nothing(database_url: str) -> None:
    set_policy(database_url, "--store", "never")
    with served(database_url) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=USER, store=True, metadata={"k": "v"}
        )
        assert raw.status_code == 200 and stored_header(raw) == "false"
        completion = raw.parse()
        assert completion.choices[0].message.content == "hello"
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve(completion.id)
        stream = client.chat.completions.create(model="m", messages=USER, stream=True, store=True)
        assert [chunk.id for chunk in stream]
        assert client.chat.completions.list().data == []
    assert raw_rows(database_url, "SELECT count(*) FROM completions") == [(0,)]


def test_a_policy_set_while_serving_applies_to_the_next_create(database_url: str) -> None:
    with served(database_url) as client:
        kept = client.chat.completions.create(model="m", messages=USER, store=True)
        set_policy(database_url, "--store", "never")
        refused = client.chat.completions.create(model="m", messages=USER, store=True)
        assert [c.id for c in client.chat.completions.list()] == [kept.id]
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve(refused.id)


def test_content_goes_at_its_window_and_the_record_at_its_own(database_url: str) -> None:
    set_policy(database_url, "--content-retention", "1d", "--record-retention", "7d")
    with served(database_url) as client:
        old = client.chat.completions.create(
            model="m", messages=USER, store=True, metadata={"team": "a"}
        )
        assert old.usage is not None
    assert purge_at(database_url, 12 * 3600) == {"default": PurgeCount(0, 0)}
    assert purge_at(database_url, 2 * DAY) == {"default": PurgeCount(content=1, records=0)}
    with served(database_url) as client:
        newer = client.chat.completions.create(model="m", messages=USER, store=True)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve(old.id)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.messages.list(old.id)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.update(old.id, metadata={"team": "b"})
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.delete(old.id)
        assert [c.id for c in client.chat.completions.list()] == [newer.id]
        assert [c.id for c in client.chat.completions.list(order="asc")] == [newer.id]
        assert client.chat.completions.list(metadata={"team": "a"}).data == []
    # The record stays, with its usage and metadata, and no text anywhere.
    (record,) = raw_rows(
        database_url,
        "SELECT usage, metadata, finish_reasons FROM completions WHERE id = $1",
        old.id,
    )
    assert (
        '"total_tokens"' in str(record[0]) and "team" in str(record[1]) and "stop" in str(record[2])
    )
    assert raw_rows(
        database_url, "SELECT count(*) FROM completion_content WHERE id = $1", old.id
    ) == [(0,)]
    assert purge_at(database_url, 8 * DAY)["default"].records == 2
    assert raw_rows(database_url, "SELECT count(*) FROM completions") == [(0,)]


def test_redaction_changes_the_stored_copy_only(database_url: str) -> None:
    set_policy(
        database_url, "--redact", "email", "--redact", "phone", "--redact", "secret",
        "--redact", r"EMPLOYEE=E\d{6}",
    )  # fmt: skip
    messages: Any = [
        {"role": "system", "content": "no secrets here"},
        {"role": "user", "content": [{"type": "text", "text": SECRETS}]},
    ]
    with served(database_url) as client:
        answer = client.chat.completions.create(model="m", messages=messages, store=True)
        assert answer.choices[0].message.content == SECRETS  # the client's answer, untouched
        stored = client.chat.completions.retrieve(answer.id)
        listed = client.chat.completions.list().data[0]
        shown = client.chat.completions.messages.list(answer.id).data
        for text in (
            stored.choices[0].message.content,
            listed.choices[0].message.content,
            shown[1].content,
            shown[1].content_parts[0].text,  # type: ignore[index, union-attr]
        ):
            assert text is not None
            assert not [secret for secret in FOUND if secret in text], text
            for placeholder in ("[EMAIL]", "[PHONE]", "[SECRET]", "[EMPLOYEE]"):
                assert placeholder in text
        assert shown[0].content == "no secrets here"
    rows = raw_rows(database_url, "SELECT completion, messages FROM completion_content")
    assert not [secret for secret in FOUND if secret in str(rows)]


def test_metadata_only_keeps_the_record_and_no_text(database_url: str) -> None:
    set_policy(database_url, "--store-content", "false")
    with served(database_url) as client:
        kept = client.chat.completions.create(
            model="m", messages=USER, store=True, metadata={"k": "v"}
        )
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve(kept.id)
        assert client.chat.completions.list().data == []
    assert raw_rows(database_url, "SELECT count(*) FROM completion_content") == [(0,)]
    (usage,) = raw_rows(database_url, "SELECT usage FROM completions WHERE id = $1", kept.id)
    assert '"prompt_tokens"' in str(usage[0])


def store_old(database_url: str) -> str:
    """A completion 40 days old, stored directly (as an older server would have)."""

    async def insert() -> str:
        store = open_store(Settings(database_url=database_url))
        await store.open()
        try:
            minted = int((time.time() - 40 * DAY) * 1000)
            cid = completion_id_floor(minted)
            body = {"id": cid, "choices": [], "usage": None}
            await store.insert(NewCompletion(cid, "default", "m", minted // 1000, body, {}, []))
            return cid
        finally:
            await store.close()

    return asyncio.run(insert())


def wait_until_no_completions(database_url: str, what: str) -> None:
    deadline = time.monotonic() + 10
    while raw_rows(database_url, "SELECT count(*) FROM completions") != [(0,)]:
        assert time.monotonic() < deadline, f"{what} was not purged"
        time.sleep(0.05)


def test_serve_purges_at_start_up_and_on_its_schedule(database_url: str) -> None:
    first = store_old(database_url)
    settings = Settings(database_url=database_url, purge_interval_seconds=0.2)
    with ThreadedServer(create_app(settings)) as url, sdk(url, "sk-open") as client:
        wait_until_no_completions(database_url, "the completion stored before start-up")
        # Stored while the server runs, after the first round: only a later round purges it.
        second = store_old(database_url)
        wait_until_no_completions(database_url, "the completion stored while serving")
        for gone in (first, second):
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.retrieve(gone)


def test_usage_still_counts_a_completion_whose_content_and_record_were_purged(
    database_url: str,
) -> None:
    set_policy(
        database_url, "--content-retention", "1d", "--record-retention", "7d", project="alpha"
    )
    _, secret = create_key(database_url, "alpha")
    _, admin_secret = create_admin_key(database_url)
    settings = Settings(database_url=database_url, purge_interval_seconds=0)

    def counted() -> list[tuple[str | None, int, int, int]]:
        with (
            ThreadedServer(create_app(settings)) as url,
            sdk(url, admin_secret, admin_api_key=admin_secret) as admin,
        ):
            found = admin.admin.organization.usage.completions(
                start_time=day, end_time=day + DAY, group_by=["project_id"]
            )
            return [
                (r.project_id, r.num_model_requests, r.input_tokens, r.output_tokens)
                for bucket in found.data
                for r in bucket.results
            ]

    with ThreadedServer(create_app(settings)) as url, sdk(url, secret) as client:
        made = client.chat.completions.create(model="m", messages=USER, store=True)
        assert made.usage is not None
    day = made.created - made.created % DAY
    expected = [("alpha", 1, made.usage.prompt_tokens, made.usage.completion_tokens)]
    assert counted() == expected
    assert purge_at(database_url, 2 * DAY) == {"alpha": PurgeCount(content=1, records=0)}
    with (
        ThreadedServer(create_app(settings)) as url,
        sdk(url, secret) as client,
        pytest.raises(openai.NotFoundError),
    ):
        client.chat.completions.retrieve(made.id)
    assert counted() == expected
    assert purge_at(database_url, 8 * DAY) == {"alpha": PurgeCount(content=0, records=1)}
    assert raw_rows(database_url, "SELECT count(*) FROM completions") == [(0,)]
    assert counted() == expected  # usage has a retention of its own (docs/observability.md)


def test_an_unset_record_retention_follows_the_content_retention(database_url: str) -> None:
    set_policy(database_url, "--content-retention", "2d")
    shown = run_cli("projects", "show", "default", "--database-url", database_url)
    assert "record_retention: 2d (default)" in shown.stdout, shown.output
    with served(database_url) as client:
        made = client.chat.completions.create(model="m", messages=USER, store=True)
    assert purge_at(database_url, 1 * DAY) == {"default": PurgeCount(0, 0)}
    assert purge_at(database_url, 3 * DAY) == {"default": PurgeCount(content=0, records=1)}
    for table in ("completions", "completion_content"):
        assert raw_rows(database_url, f"SELECT count(*) FROM {table}") == [(0,)]
    with served(database_url) as client, pytest.raises(openai.NotFoundError):
        client.chat.completions.retrieve(made.id)


def test_content_retention_forever_keeps_everything_however_far_ahead(database_url: str) -> None:
    set_policy(database_url, "--content-retention", "forever", project="alpha")
    set_policy(database_url, "--content-retention", "1d", project="beta")
    with keyed_server(database_url, auth_cache_seconds=0, purge_interval_seconds=0) as (
        _,
        callers,
    ):
        alpha, beta = callers["alpha"].client, callers["beta"].client
        kept = alpha.chat.completions.create(
            model="m", messages=USER, store=True, metadata={"k": "v"}
        )
        beta.chat.completions.create(model="m", messages=USER, store=True)
    # Ten years on, beta's completion is long gone, in the same days as alpha's.
    assert purge_at(database_url, 3650 * DAY) == {
        "alpha": PurgeCount(0, 0),
        "beta": PurgeCount(content=0, records=1),
    }
    with keyed_server(database_url, ("alpha",), purge_interval_seconds=0) as (_, callers):
        alpha = callers["alpha"].client
        assert alpha.chat.completions.retrieve(kept.id).choices[0].message.content == "hello"
        assert [c.id for c in alpha.chat.completions.list(metadata={"k": "v"})] == [kept.id]
        assert alpha.chat.completions.messages.list(kept.id).data[0].content == "hello"
    assert raw_rows(database_url, "SELECT id FROM completions") == [(kept.id,)]
