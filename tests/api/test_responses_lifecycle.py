"""Stored responses under the project's policy (store mode, redaction, metadata-only,
retention) and scoped to their project, through the official client, on both stores."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import openai
import pytest

from chatkeep.config import Settings
from chatkeep.lifecycle.book import PolicyBook
from chatkeep.lifecycle.retention import Retention
from chatkeep.store.base import PurgeCount
from chatkeep.store.factory import open_store, response_store_for
from chatkeep.store.projects import project_settings_for
from tests.api.keyed import keyed_server
from tests.api.test_lifecycle import DAY, FOUND, SECRETS, raw_rows, served, set_policy


def purge_at(database_url: str, seconds_ahead: float, *, dry_run: bool = False) -> PurgeCount:
    """Retention as `chatkeep serve` runs it, with the clock moved ahead; the default
    project's counts."""

    async def run() -> PurgeCount:
        store = open_store(Settings(database_url=database_url))
        await store.open()
        try:
            book = PolicyBook(project_settings_for(store), {}, ttl=0)
            retention = Retention(
                store,
                book,
                clock=lambda: time.time() + seconds_ahead,
                responses=response_store_for(store),
            )
            found = await retention.purge(dry_run=dry_run)
            assert found is not None
            return found.get("default", PurgeCount())
        finally:
            await store.close()

    return asyncio.run(run())


def test_policy_never_answers_and_keeps_nothing(database_url: str) -> None:
    set_policy(database_url, "--store", "never")
    with served(database_url) as client:
        raw = client.responses.with_raw_response.create(model="m", input="hi")
        assert raw.headers["x-chatkeep-stored"] == "false"
        answer = raw.parse()
        assert answer.output_text == "hi" and answer.store is False
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(answer.id)
    assert raw_rows(database_url, "SELECT count(*) FROM responses") == [(0,)]


def test_policy_always_keeps_a_store_false_response(database_url: str) -> None:
    set_policy(database_url, "--store", "always")
    with served(database_url) as client:
        raw = client.responses.with_raw_response.create(model="m", input="hi", store=False)
        assert raw.headers["x-chatkeep-stored"] == "true"
        assert client.responses.retrieve(raw.parse().id).store is True
        plain = client.responses.with_raw_response.create(model="m", input="hi")
        assert "x-chatkeep-stored" not in plain.headers  # as asked (by default)


def test_redaction_changes_the_stored_copy_only(database_url: str) -> None:
    set_policy(database_url, "--redact", "email", "--redact", "phone", "--redact", "secret",
               "--redact", r"EMPLOYEE=E\d{6}")  # fmt: skip
    with served(database_url) as client:
        answer = client.responses.create(model="m", input=SECRETS, instructions=SECRETS)
        assert answer.output_text == SECRETS  # the client's answer, untouched
        stored = client.responses.retrieve(answer.id)
        items = client.responses.input_items.list(answer.id).data
        for text in (
            stored.output_text,
            stored.instructions,
            items[0].content[0].text,  # type: ignore[union-attr]
        ):
            assert isinstance(text, str)
            assert not [secret for secret in FOUND if secret in text], text
            assert "[EMAIL]" in text and "[EMPLOYEE]" in text
    rows = raw_rows(database_url, "SELECT response, input_items FROM responses")
    assert rows and not [secret for secret in FOUND if secret in str(rows)]


def test_metadata_only_keeps_the_record_and_no_text(database_url: str) -> None:
    set_policy(database_url, "--store-content", "false")
    with served(database_url) as client:
        kept = client.responses.create(model="m", input="secret text", metadata={"k": "v"})
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(kept.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="m", input="x", previous_response_id=kept.id)
    rows = raw_rows(database_url, "SELECT response, input_items, usage, metadata FROM responses")
    (response, items, usage, metadata) = rows[0]
    assert response is None and items is None
    assert '"input_tokens"' in str(usage) and '"k"' in str(metadata)


def test_retention_drops_content_then_records(database_url: str) -> None:
    set_policy(database_url, "--content-retention", "1d", "--record-retention", "7d")
    with served(database_url) as client:
        first = client.responses.create(model="m", input="old")
        second = client.responses.create(model="m", input="newer", previous_response_id=first.id)
    assert purge_at(database_url, 0).content == 0  # nothing is a day old yet
    assert purge_at(database_url, 2 * DAY, dry_run=True).content == 2
    assert purge_at(database_url, 2 * DAY).content == 2
    with served(database_url) as client:
        for gone in (first.id, second.id):
            with pytest.raises(openai.NotFoundError):
                client.responses.retrieve(gone)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="m", input="x", previous_response_id=second.id)
    assert raw_rows(database_url, "SELECT count(*) FROM responses WHERE response IS NULL") == [(2,)]
    assert purge_at(database_url, 8 * DAY).records == 2
    assert raw_rows(database_url, "SELECT count(*) FROM responses") == [(0,)]


def test_another_projects_response_is_not_found(database_url: str) -> None:
    with keyed_server(database_url) as (_url, callers):
        alpha, beta = callers["alpha"].client, callers["beta"].client
        mine = alpha.responses.create(model="m", input="alpha's")
        for call in (
            lambda: beta.responses.retrieve(mine.id),
            lambda: beta.responses.input_items.list(mine.id),
            lambda: beta.responses.delete(mine.id),
            lambda: beta.responses.create(model="m", input="x", previous_response_id=mine.id),
        ):
            with pytest.raises(openai.NotFoundError):
                call()
        assert alpha.responses.retrieve(mine.id).output_text == "alpha's"


def test_a_deleted_responses_text_is_not_in_the_sqlite_file(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'chatkeep.db'}"
    marker = "unforgettable-marker-" * 20
    with served(database_url) as client:
        kept = client.responses.create(model="m", input="kept")
        gone = client.responses.create(model="m", input=marker, previous_response_id=kept.id)
        client.responses.delete(gone.id)
        assert client.responses.retrieve(kept.id).output_text == "kept"
        files = list(tmp_path.glob("chatkeep.db*"))
        assert files and not [f for f in files if marker[:21].encode() in f.read_bytes()]
