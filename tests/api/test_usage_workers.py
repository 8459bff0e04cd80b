"""Usage with `chatkeep serve --workers 2` on both stores: each worker counts its own
completions and adds them to the same rows; a graceful stop writes what is left, a `kill -9`
loses what its process had not written (docs/observability.md, "What can be lost")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatkeep.config import Settings
from chatkeep.store.factory import open_store
from chatkeep.store.usage import UsageFilter, usage_store_for
from tests.api.test_server_process import ServerProcess
from tests.api.test_workers import _only, _wait_for_workers
from tests.postgres_fixtures import create_database, drop_database, run_aside

USER = [{"role": "user", "content": "count me once"}]
# Long enough that no periodic flush happens during a test: what is written, is written by
# a usage read (its own process only) or at shutdown.
NO_PERIODIC_FLUSH = {"CHATKEEP_USAGE_FLUSH_SECONDS": "3600"}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_admin_url: str
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'usage.db'}"
        return
    url = create_database(postgres_admin_url, prefix="chatkeep_usage_workers")
    try:
        yield url
    finally:
        drop_database(postgres_admin_url, url)


def requests_in_store(database_url: str) -> int:
    async def read() -> int:
        store = open_store(Settings(database_url=database_url))
        await store.open()
        try:
            now = int(time.time())
            totals = await usage_store_for(store).usage_totals(
                UsageFilter(start=now - 3600, end=now + 60), width=86_400
            )
            return sum(total.requests for total in totals)
        finally:
            await store.close()

    return run_aside(read)


def test_workers_add_up_and_a_graceful_stop_loses_nothing(
    tmp_path: Path, database_url: str
) -> None:
    server = ServerProcess(
        tmp_path, "--workers", "2", "--database-url", database_url, settings=NO_PERIODIC_FLUSH
    )
    try:
        a, b = _wait_for_workers(server, 2)
        for serving, stopped, calls in ((a, b, 3), (b, a, 2)):
            with _only(server, serving, stopped) as client:
                for _ in range(calls):
                    client.chat.completions.create(model="echo-1", messages=USER)
        with _only(server, a, b) as client:
            start = int(time.time()) - 3600
            admin = client.with_options(admin_api_key="sk-x")  # an open server: any
            # The end is given: the default (now, exclusive) leaves out this minute's bucket
            # when now falls on a whole minute.
            page = admin.admin.organization.usage.completions(
                start_time=start, end_time=int(time.time()) + 60
            )
            # Worker a wrote its own counts before answering; b's wait for its flush.
            assert sum(r.num_model_requests for d in page.data for r in d.results) == 3
    finally:
        output = server.stop()
    assert "Traceback" not in output, output
    assert requests_in_store(database_url) == 5  # b's two, written as it stopped

    # A process killed outright loses what it had counted and not yet written.
    killed = ServerProcess(tmp_path, "--database-url", database_url, settings=NO_PERIODIC_FLUSH)
    try:
        with killed.client() as client:
            client.chat.completions.create(model="echo-1", messages=USER)
    finally:
        killed.kill()
    assert requests_in_store(database_url) == 5
