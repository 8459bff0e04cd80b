"""`GET /metrics` on both stores: scraped, parsed by prometheus_client's parser, and the
counters seen moving for plain, streamed, failed and stored calls through the official client.

The model calls go to the fault-injecting upstream on loopback (tests/backends); its model
name picks what it does (`ok`, `status-500`, `malformed`, ...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.lifecycle.book import PolicyBook
from chatkeep.lifecycle.retention import Retention
from chatkeep.observability.metrics import Metrics
from chatkeep.store.factory import open_store
from chatkeep.store.projects import project_settings_for
from tests.api.test_lifecycle import set_policy
from tests.backends.fault_upstream import USAGE, running_fault_upstream
from tests.conftest import API_KEY
from tests.observability.scrape import Samples, label_names, parse, total

pytestmark = pytest.mark.anyio

USER = [{"role": "user", "content": "count me"}]
CREATE = "/v1/chat/completions"
DURATION = "gen_ai_server_request_duration_seconds_count"


class Served:
    """chatkeep in-process, its official client, and its `/metrics` as parsed samples."""

    def __init__(self, http: httpx2.AsyncClient, client: openai.AsyncOpenAI) -> None:
        self.http = http
        self.client = client

    async def scrape(self, **headers: str) -> Samples:
        response = await self.http.get("/metrics", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return parse(response.text)


@asynccontextmanager
async def served(tmp_path: Path, database_url: str, **settings: Any) -> AsyncIterator[Served]:
    async with running_fault_upstream() as upstream:
        config = tmp_path / "chatkeep.toml"
        config.write_text(
            f'default = "fault"\n[upstreams.fault]\nbase_url = "{upstream.base_url}"\n'
            "connect_timeout = 2\nread_timeout = 2\n"
        )
        # No writes but the completions' (usage rows are purged and flushed by writes too):
        # the store's commit figures count the calls of the test alone.
        options = {
            "purge_interval_seconds": 0,
            "usage_retention_days": 0,
            "usage_flush_seconds": 3600,
            **settings,
        }
        app = create_app(Settings(database_url=database_url, config=config, **options))
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://ck") as http:
                client = openai.AsyncOpenAI(
                    api_key=API_KEY, base_url="http://ck/v1", http_client=http, max_retries=0
                )
                yield Served(http, client)


async def test_counters_move_for_plain_streamed_failed_and_stored_calls(
    tmp_path: Path, database_url: str, store_engine: str
) -> None:
    async with served(tmp_path, database_url) as ck:
        before = await ck.scrape()
        assert total(before, DURATION) == 0
        plain = {"gen_ai_request_model": "ok", "backend": "fault"}

        await ck.client.chat.completions.create(model="ok", messages=USER)
        after_plain = await ck.scrape()
        assert total(after_plain, DURATION, **plain, gen_ai_request_stream="false") == 1
        assert total(after_plain, DURATION, error_type="") == 1
        assert total(after_plain, "chatkeep_gateway_overhead_seconds_count", **plain) == 1
        tokens = "gen_ai_client_token_usage_sum"
        assert total(after_plain, tokens, **plain, gen_ai_token_type="input") == 5
        assert total(after_plain, tokens, **plain, gen_ai_token_type="output") == 3
        http = {"http_route": CREATE, "http_request_method": "POST"}
        assert total(after_plain, "chatkeep_http_requests_total", **http) == 1
        assert total(after_plain, "chatkeep_http_requests_total", http_response_status_code="200")
        # Nothing stored yet: no commit of a completion.
        commits = "chatkeep_store_commit_batch_size_sum"
        assert total(after_plain, commits, store=store_engine) == 0

        stream = await ck.client.chat.completions.create(model="ok", messages=USER, stream=True)
        async for _ in stream:
            pass
        streamed = await ck.scrape()
        assert total(streamed, DURATION, **plain, gen_ai_request_stream="true") == 1
        ttft = "gen_ai_server_time_to_first_token_seconds_count"
        assert total(streamed, ttft, **plain, gen_ai_request_stream="true") == 1
        assert total(streamed, ttft, gen_ai_request_stream="false") == 0
        assert total(streamed, "chatkeep_streams_open") == 0  # it ended

        stored = await ck.client.chat.completions.create(model="ok", messages=USER, store=True)
        kept = await ck.scrape()
        assert total(kept, commits, store=store_engine) >= 1
        assert total(kept, "chatkeep_store_commit_duration_seconds_count", store=store_engine)
        await ck.client.chat.completions.retrieve(stored.id)
        read = await ck.scrape()
        route = "/v1/chat/completions/{completion_id}"  # the template, never the id
        assert total(read, "chatkeep_http_requests_total", http_route=route) == 1
        assert stored.id not in str(read)

        with pytest.raises(openai.InternalServerError):
            await ck.client.chat.completions.create(model="status-500", messages=USER)
        with pytest.raises(openai.BadRequestError):
            await ck.client.chat.completions.create(model="status-400", messages=USER)
        with pytest.raises(openai.InternalServerError):
            await ck.client.chat.completions.create(model="malformed", messages=USER)
        failed = await ck.scrape()
        errors = "chatkeep_upstream_errors_total"
        assert total(failed, errors, upstream="fault", kind="5xx") == 1
        assert total(failed, errors, upstream="fault", kind="4xx") == 1
        assert total(failed, errors, upstream="fault", kind="malformed") == 1
        assert total(failed, DURATION, gen_ai_request_model="status-500") == 1
        assert total(failed, DURATION, error_type="UpstreamError") == 1
        assert total(failed, DURATION, error_type="400") == 1
        assert total(failed, DURATION, error_type="UpstreamMalformedError") == 1
        # Failures count no tokens; the plain, streamed and stored calls did (a stream asks
        # its upstream for usage whether or not its client did: the usage meter counts it).
        assert total(failed, tokens, gen_ai_token_type="input") == 3 * USAGE["prompt_tokens"]
        assert total(failed, "chatkeep_http_requests_total", http_response_status_code="502") == 2


async def test_a_broken_stream_counts_as_an_upstream_error_and_a_failed_create(
    tmp_path: Path, database_url: str
) -> None:
    async with served(tmp_path, database_url) as ck:
        stream = await ck.client.chat.completions.create(
            model="stream-cut", messages=USER, stream=True
        )
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass
        samples = await ck.scrape()
        assert total(samples, "chatkeep_upstream_errors_total", kind="connection") == 1
        assert total(samples, DURATION, error_type="UpstreamStreamBroken") == 1
        assert total(samples, DURATION, error_type="") == 0
        assert total(samples, "chatkeep_streams_open") == 0


async def test_unknown_routes_and_odd_methods_are_counted_without_their_path(
    tmp_path: Path, database_url: str
) -> None:
    async with served(tmp_path, database_url) as ck:
        await ck.http.get("/v1/no-such-route/secret-path-part")
        await ck.http.request("BREW", "/health")
        samples = await ck.scrape()
        assert total(samples, "chatkeep_http_requests_total", http_route="_UNMATCHED") == 1
        assert total(samples, "chatkeep_http_requests_total", http_request_method="_OTHER") == 1
        assert "secret-path-part" not in str(samples)


async def test_project_is_a_label_only_when_turned_on(tmp_path: Path, database_url: str) -> None:
    async with served(tmp_path, database_url) as ck:
        await ck.client.chat.completions.create(model="ok", messages=USER)
        assert "project" not in label_names(await ck.scrape(), DURATION)
    async with served(tmp_path, database_url, metrics_project_label=True) as ck:
        await ck.client.chat.completions.create(model="ok", messages=USER)
        samples = await ck.scrape()
        assert total(samples, DURATION, project="default", gen_ai_request_model="ok") == 1


async def test_model_names_past_the_bound_are_counted_together(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chatkeep.observability.metrics.MAX_MODEL_SERIES", 2)
    async with served(tmp_path, database_url) as ck:
        for name in ("ok", "ok-a", "ok-b", "ok-c"):
            await ck.client.chat.completions.create(model=name, messages=USER)
        for name in ("x/status-500", "y/status-500"):  # failures count toward the bound too
            with pytest.raises(openai.InternalServerError):
                await ck.client.chat.completions.create(model=name, messages=USER)
        samples = await ck.scrape()
        assert total(samples, DURATION, gen_ai_request_model="_OTHER") == 4
        assert total(samples, DURATION) == 6


# --- the token that protects /metrics ---------------------------------------------------

TOKEN = "metrics-secret-1"


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("", 401),
        (f"Bearer {TOKEN}x", 401),
        (f"Bearer {TOKEN[:-1]}", 401),
        (f"Basic {TOKEN}", 401),
        (TOKEN, 401),
        (f"Bearer {API_KEY}", 401),  # a project key is not the metrics token
        (f"Bearer {TOKEN}", 200),
        (f"bearer {TOKEN}", 200),
    ],
)
async def test_the_metrics_token(
    tmp_path: Path, database_url: str, authorization: str | None, status: int
) -> None:
    async with served(tmp_path, database_url, metrics_token=TOKEN) as ck:
        headers = {} if authorization is None else {"authorization": authorization}
        response = await ck.http.get("/metrics", headers=headers)
        assert response.status_code == status
        if status == 401:
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["code"] == "invalid_metrics_token"
            assert TOKEN not in response.text
        else:
            assert "chatkeep_http_requests_total" in response.text


def test_metrics_never_need_a_project_key(database_url: str) -> None:
    """On a server that holds keys, `/metrics` answers without one (and no key opens it
    when a token is set: covered above)."""
    from tests.api.keyed import keyed_server

    with keyed_server(database_url, ("alpha",)) as (url, callers):
        assert httpx2.get(f"{url}/v1/models").status_code == 401
        response = httpx2.get(f"{url}/metrics")
        assert response.status_code == 200
        assert parse(response.text)  # a whole exposition
        assert callers["alpha"].secret not in response.text


# --- retention ----------------------------------------------------------------------------


async def test_purge_rounds_and_rows_are_counted(tmp_path: Path, database_url: str) -> None:
    async with served(tmp_path, database_url) as ck:
        for _ in range(3):
            await ck.client.chat.completions.create(model="ok", messages=USER, store=True)
    policy = ("--content-retention", "1d", "--record-retention", "7d")
    await asyncio.to_thread(set_policy, database_url, *policy)  # the CLI runs its own loop
    metrics = Metrics()
    store = open_store(Settings(database_url=database_url))
    await store.open()
    try:
        book = PolicyBook(project_settings_for(store), {}, ttl=0)
        ahead: Callable[[], float] = lambda: time.time() + 8 * 86400  # noqa: E731
        retention = Retention(store, book, clock=ahead, metrics=metrics)
        task = asyncio.get_running_loop().create_task(retention.run_every(3600))
        deadline = time.monotonic() + 20
        while total(parse(metrics.exposition().decode()), "chatkeep_purge_runs_total") == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        task.cancel()
        samples = parse(metrics.exposition().decode())
        assert total(samples, "chatkeep_purge_runs_total", outcome="done") == 1
        assert total(samples, "chatkeep_purged_rows_total", kind="records") == 3
    finally:
        await store.close()
