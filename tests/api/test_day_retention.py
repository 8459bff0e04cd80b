"""Retention by day on PostgreSQL, through the official client: the content window drops
the day's content and filter leaves (not rows), so the completion answers 404 while its
record stays, counted by the usage route, until the record window drops its leaf too."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import openai
import pytest

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.store import postgres_partitions as partitions
from chatkeep.store.base import PurgeCount
from tests.api.keyed import create_key, sdk
from tests.api.test_lifecycle import DAY, USER, purge_at, raw_rows, set_policy
from tests.api.test_usage import create_admin_key
from tests.conftest import ThreadedServer

LEAF = "SELECT to_regclass($1) IS NOT NULL"


def leaves(url: str, table: str, day: object) -> bool:
    ((found,),) = raw_rows(url, LEAF, partitions.day_name(table, day))  # type: ignore[arg-type]
    return bool(found)


def test_a_days_content_leaves_go_at_its_window_and_its_record_leaf_at_its_own(
    postgres_url: str,
) -> None:
    if datetime.now(UTC).hour == 23:  # a purge a day ahead must pass all of today
        pytest.skip("too close to midnight UTC")
    key_id, secret = create_key(postgres_url, "alpha")
    _, admin = create_admin_key(postgres_url)
    set_policy(postgres_url, "--content-retention", "1d", "--record-retention", "7d",
               project="alpha")  # fmt: skip
    settings = Settings(database_url=postgres_url, auth_cache_seconds=0, purge_interval_seconds=0)
    today = datetime.now(UTC).date()
    with ThreadedServer(create_app(settings)) as url, sdk(url, secret) as client:
        old = client.chat.completions.create(
            model="m", messages=USER, store=True, metadata={"team": "a"}
        )
        assert old.usage is not None
        assert client.chat.completions.retrieve(old.id).id == old.id

        # Two days on, the content window has passed all of today: its leaves go whole.
        assert purge_at(postgres_url, 2 * DAY) == {"alpha": PurgeCount(content=1, records=0)}
        assert not leaves(postgres_url, "completion_content", today)
        assert not leaves(postgres_url, "completion_metadata", today)
        assert leaves(postgres_url, "completions", today)

        with pytest.raises(openai.NotFoundError):
            client.chat.completions.retrieve(old.id)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.messages.list(old.id)
        assert client.chat.completions.list(metadata={"team": "a"}).data == []
        # A completion made since gets today's content leaf made again, and is served.
        newer = client.chat.completions.create(model="m", messages=USER, store=True)
        assert [c.id for c in client.chat.completions.list()] == [newer.id]
        (record,) = raw_rows(
            postgres_url, "SELECT usage, metadata FROM completions WHERE id = $1", old.id
        )
        assert '"total_tokens"' in str(record[0]) and "team" in str(record[1])

        # Usage still counts the purged completion (and the newer one).
        now = int(time.time())
        with sdk(url, admin, admin_api_key=admin) as admin_client:
            found = admin_client.admin.organization.usage.completions(
                start_time=now - now % DAY, end_time=now - now % DAY + DAY,
                group_by=["api_key_id"],
            )  # fmt: skip
        assert [
            (r.num_model_requests, r.input_tokens, r.api_key_id)
            for bucket in found.data
            for r in bucket.results
        ] == [(2, 2 * old.usage.prompt_tokens, key_id)]

    # Past the record window, the records' leaf of the day goes too.
    assert purge_at(postgres_url, 8 * DAY)["alpha"].records == 2
    assert not leaves(postgres_url, "completions", today)
    assert raw_rows(postgres_url, "SELECT count(*) FROM completions") == [(0,)]
