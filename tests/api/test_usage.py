"""OpenAI's usage and costs routes through the official client (`client.admin.organization
.usage.completions` / `.costs`, openai>=3.x), on both stores: sums per bucket and group over a
seeded workload, every bucket width and its pages, project isolation, admin keys, prices,
the live count of every answered completion, and a table of bad inputs. Every page is
validated against OpenAI's `UsageResponse` schema."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.protocol.queries import MAX_CREATED
from chatkeep.store.factory import open_store
from chatkeep.store.usage import usage_store_for
from chatkeep.usage.meter import UsageMeter
from tests.api.keyed import create_key, run_cli
from tests.api.test_openapi_conformance import _errors
from tests.conftest import ThreadedServer
from tests.postgres_fixtures import run_aside

DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
WIDTHS = {"1m": 60, "1h": 3600, "1d": DAY}
PRICES = """\
default = "echo"

[prices."gpt-4o"]
input = 2.5
output = 10.0
cached_input = 1.25

[prices."llama-*"]
input = 0.1
output = 0.2
"""
USER = [{"role": "user", "content": "count my tokens"}]


@dataclass(frozen=True)
class Record:
    project: str
    key: str  # "a", "a2" or "b": which test key made it
    model: str
    created: int
    prompt: int
    completion: int
    cached: int = 0


# A seeded workload over three days, two projects, three keys and three models (one with no
# price). Minutes: T0 (two calls), T0+60, T0+3600 (beta), T0+1d+2h, T0+2d.
RECORDS = [
    Record("alpha", "a", "gpt-4o", T0 + 10, 100, 10, 40),
    Record("alpha", "a2", "gpt-4o", T0 + 50, 200, 20),
    Record("alpha", "a", "llama-3", T0 + 70, 30, 3),
    Record("beta", "b", "gpt-4o", T0 + 3605, 1000, 100, 500),
    Record("alpha", "a", "gpt-4o", T0 + DAY + 7200, 50, 5),
    Record("beta", "b", "mystery", T0 + 2 * DAY + 1, 7, 7),
]


@dataclass(frozen=True)
class Served:
    url: str
    keys: dict[str, tuple[str, str]]  # "a", "a2", "b", "admin" -> (key id, secret)

    def client(self, who: str) -> openai.OpenAI:
        secret = self.keys[who][1]
        return openai.OpenAI(
            api_key=secret, admin_api_key=secret, base_url=f"{self.url}/v1", max_retries=0
        )

    def http(self, who: str) -> httpx2.Client:
        return httpx2.Client(
            base_url=self.url, headers={"authorization": f"Bearer {self.keys[who][1]}"}
        )


def create_admin_key(database_url: str) -> tuple[str, str]:
    result = run_cli("keys", "create", "--admin", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert "admin key" in result.stderr
    key_id = result.stderr.split("Created API key ", 1)[1].split(" ", 1)[0]
    return key_id, result.stdout.strip()


async def _seed(database_url: str, keys: dict[str, tuple[str, str]]) -> None:
    store = open_store(Settings(database_url=database_url))
    await store.open()
    try:
        meter = UsageMeter(usage_store_for(store))
        for r in RECORDS:
            details = {"cached_tokens": r.cached}
            counted = {"prompt_tokens": r.prompt, "completion_tokens": r.completion}
            meter.record(
                r.project, keys[r.key][0], r.model, r.created,
                {**counted, "prompt_tokens_details": details},
            )  # fmt: skip
        await meter.aclose()
    finally:
        await store.close()


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    config = tmp_path / "chatkeep.toml"
    config.write_text(PRICES)
    keys = {
        "a": create_key(database_url, "alpha"),
        "a2": create_key(database_url, "alpha"),
        "b": create_key(database_url, "beta"),
        "admin": create_admin_key(database_url),
    }
    run_aside(lambda: _seed(database_url, keys))
    # Usage retention off: the seeded rows (from 2026-01-01) outlive the default 400 days.
    settings = Settings(database_url=database_url, config=config, usage_retention_days=0)
    with ThreadedServer(create_app(settings)) as url:
        yield Served(url, keys)


def expected(
    served: Served,
    width: int,
    start: int,
    end: int,
    groups: tuple[str, ...],
    projects: tuple[str, ...] = ("alpha", "beta"),
) -> dict[tuple[Any, ...], list[int]]:
    """(bucket start as shown, *group values) -> [requests, input, cached, output]."""
    sums: dict[tuple[Any, ...], list[int]] = {}
    for r in RECORDS:
        minute = r.created - r.created % 60
        if not start <= minute < end or r.project not in projects:
            continue
        fields = {"project_id": r.project, "model": r.model, "api_key_id": served.keys[r.key][0]}
        key = (max(start, minute - minute % width), *(fields[g] for g in groups))
        found = sums.setdefault(key, [0, 0, 0, 0])
        for i, value in enumerate((1, r.prompt, r.cached, r.completion)):
            found[i] += value
    return sums


def pages(client: openai.OpenAI, route: str = "completions", **params: Any) -> list[Any]:
    """Every page of a query, following `next_page`; each checked against OpenAI's schema."""
    usage = client.admin.organization.usage.with_raw_response
    found: list[Any] = []
    while True:
        raw = getattr(usage, route)(**params)
        body = json.loads(raw.text)
        assert _errors("UsageResponse", body) == []
        found.append(body)
        if not body["has_more"]:
            return found
        params["page"] = body["next_page"]


def buckets(found: list[Any], start: int, end: int) -> list[Any]:
    """The pages' buckets, which must tile [start, end) with no gap and no overlap."""
    listed = [bucket for page in found for bucket in page["data"]]
    assert listed[0]["start_time"] == start and listed[-1]["end_time"] == end
    for before, after in itertools.pairwise(listed):
        assert before["end_time"] == after["start_time"]
    return listed


def sums_of(listed: list[Any], groups: tuple[str, ...]) -> dict[tuple[Any, ...], list[int]]:
    sums: dict[tuple[Any, ...], list[int]] = {}
    for bucket in listed:
        for result in bucket["results"]:
            assert result["object"] == "organization.usage.completions.result"
            key = (bucket["start_time"], *(result[g] for g in groups))
            assert key not in sums
            sums[key] = [
                result["num_model_requests"],
                result["input_tokens"],
                result["input_cached_tokens"],
                result["output_tokens"],
            ]
    return sums


@pytest.mark.parametrize("width", list(WIDTHS))
def test_sums_per_bucket_and_group_for_every_width(served: Served, width: str) -> None:
    groups = ("project_id", "model", "api_key_id")
    start, end = T0, T0 + 3 * DAY
    most = {"1m": 1440, "1h": 168, "1d": 31}[width]
    found = pages(
        served.client("admin"), start_time=start, end_time=end, bucket_width=width,
        group_by=list(groups), limit=most,
    )  # fmt: skip
    listed = buckets(found, start, end)
    assert len(listed) == 3 * DAY // WIDTHS[width]
    if width == "1m":
        assert [len(page["data"]) for page in found] == [1440, 1440, 1440]  # the most a page
    assert sums_of(listed, groups) == expected(served, WIDTHS[width], start, end, groups)


def test_totals_without_grouping_and_buckets_cut_to_the_range(served: Served) -> None:
    admin = served.client("admin")
    listed = buckets(pages(admin, start_time=T0, end_time=T0 + 3 * DAY), T0, T0 + 3 * DAY)
    assert sums_of(listed, ()) == {
        (T0,): [4, 1330, 540, 133],
        (T0 + DAY,): [1, 50, 0, 5],
        (T0 + 2 * DAY,): [1, 7, 0, 7],
    }
    for result in listed[0]["results"]:
        assert [result[g] for g in ("project_id", "model", "api_key_id", "batch")] == [None] * 4
    # From noon on the first day: the first bucket says so, and holds nothing (all its
    # usage was in the morning); the later ones are whole UTC days.
    noon = T0 + DAY // 2
    cut = buckets(pages(admin, start_time=noon, end_time=T0 + 2 * DAY), noon, T0 + 2 * DAY)
    assert (cut[0]["start_time"], cut[0]["end_time"], cut[0]["results"]) == (
        noon, T0 + DAY, [],
    )  # fmt: skip
    assert sums_of(cut, ()) == {(T0 + DAY,): [1, 50, 0, 5]}


def test_pages_follow_next_page_and_the_last_says_so(served: Served) -> None:
    admin = served.client("admin")
    first = admin.admin.organization.usage.completions(
        start_time=T0, end_time=T0 + 3 * DAY, limit=2
    )
    assert [b.start_time for b in first.data] == [T0, T0 + DAY]
    assert first.has_more is True and first.next_page
    second = admin.admin.organization.usage.completions(
        start_time=T0, end_time=T0 + 3 * DAY, limit=2, page=first.next_page
    )
    assert [b.start_time for b in second.data] == [T0 + 2 * DAY]
    assert second.has_more is False and second.next_page is None
    assert [r.num_model_requests for r in second.data[0].results] == [1]


def test_filters_and_groups_that_chatkeep_answers_honestly(served: Served) -> None:
    admin = served.client("admin")
    week = {"start_time": T0, "end_time": T0 + 3 * DAY}
    by_model = sums_of(
        buckets(pages(admin, **week, models=["llama-3"], group_by=["model"]), T0, T0 + 3 * DAY),
        ("model",),
    )
    assert by_model == {(T0, "llama-3"): [1, 30, 0, 3]}
    key_a2 = served.keys["a2"][0]
    by_key = pages(admin, **week, api_key_ids=[key_a2], group_by=["api_key_id", "user_id"])
    assert sums_of(by_key[0]["data"], ("api_key_id", "user_id")) == {
        (T0, key_a2, None): [1, 200, 0, 20]  # keys belong to projects, not users
    }
    batch = pages(admin, **week, group_by=["batch"])[0]["data"][0]["results"]
    assert [r["batch"] for r in batch] == [False]  # chatkeep has no batch jobs
    for nothing in ({"batch": True}, {"user_ids": ["user-abc"]}):
        found = pages(admin, **week, **nothing)[0]["data"]
        assert [b["results"] for b in found] == [[], [], []]


def test_a_project_key_sees_its_own_project_only(served: Served) -> None:
    week = {"start_time": T0, "end_time": T0 + 3 * DAY}
    groups = ("project_id", "model", "api_key_id")
    for who, project in (("a", "alpha"), ("b", "beta")):
        client = served.client(who)
        mine = sums_of(buckets(pages(client, **week, group_by=list(groups)), T0, T0 + 3 * DAY),
                       groups)  # fmt: skip
        assert mine == expected(served, DAY, T0, T0 + 3 * DAY, groups, projects=(project,))
        other, other_key = ("beta", "b") if project == "alpha" else ("alpha", "a")
        for hidden in ({"project_ids": [other]}, {"api_key_ids": [served.keys[other_key][0]]}):
            assert [b["results"] for b in pages(client, **week, **hidden)[0]["data"]] == [[]] * 3
        costs = pages(client, "costs", **week, group_by=["project_id"])
        assert {r["project_id"] for b in costs[0]["data"] for r in b["results"]} == {project}


def test_costs_from_the_config_files_prices(served: Served) -> None:
    usage = served.client("admin").admin.organization.usage.with_raw_response
    raw = usage.costs(start_time=T0, end_time=T0 + 3 * DAY)
    body = json.loads(raw.text)
    assert _errors("UsageResponse", body) == []
    # gpt-4o: 760 uncached input at 2.5, 540 cached at 1.25, 130 output at 10 per million;
    # llama-3 (priced by the `llama-*` pattern): 30 input at 0.1, 3 output at 0.2.
    day0 = 760 * 2.5e-6 + 540 * 1.25e-6 + 130 * 10e-6 + 30 * 0.1e-6 + 3 * 0.2e-6
    amounts = [[r["amount"] for r in b["results"]] for b in body["data"]]
    assert amounts == [
        [{"value": pytest.approx(day0), "currency": "usd"}],
        [{"value": pytest.approx(50 * 2.5e-6 + 5 * 10e-6), "currency": "usd"}],
        [{"value": 0.0, "currency": "usd"}],  # `mystery` has no price: it costs nothing...
    ]
    assert raw.headers["x-chatkeep-unpriced-models"] == "mystery"  # ...and the answer says so
    items = pages(
        served.client("admin"), "costs", start_time=T0, end_time=T0 + DAY,
        group_by=["line_item", "project_id"],
    )[0]["data"][0]["results"]  # fmt: skip
    assert {(r["line_item"], r["project_id"], r["quantity"]) for r in items} == {
        ("gpt-4o, input", "alpha", 260), ("gpt-4o, cached input", "alpha", 40),
        ("gpt-4o, output", "alpha", 30), ("gpt-4o, input", "beta", 500),
        ("gpt-4o, cached input", "beta", 500), ("gpt-4o, output", "beta", 100),
        ("llama-3, input", "alpha", 30), ("llama-3, output", "alpha", 3),
    }  # fmt: skip
    assert {r["quantity_unit"] for r in items} == {"tokens"}
    beta_input = next(r for r in items if r["line_item"] == "gpt-4o, input" and
                      r["project_id"] == "beta")  # fmt: skip
    assert beta_input["amount"]["value"] == pytest.approx(500 * 2.5e-6)


def test_every_answered_completion_is_counted_stored_or_not(served: Served) -> None:
    alpha = served.client("a")
    plain = alpha.chat.completions.create(model="gpt-4o", messages=USER)
    assert plain.usage is not None
    stored = alpha.chat.completions.create(model="gpt-4o", messages=USER, store=True)
    for options in (None, {"include_usage": True}):
        stream = alpha.chat.completions.create(
            model="gpt-4o", messages=USER, stream=True,
            **({"stream_options": options} if options else {}),  # type: ignore[arg-type]
        )  # fmt: skip
        chunks = list(stream)
        assert any(c.usage for c in chunks) == (options is not None)  # hidden when unasked
    with pytest.raises(openai.BadRequestError):  # not answered: not counted
        alpha.chat.completions.create(model="gpt-4o", messages=[])
    alpha.chat.completions.delete(stored.id)  # usage outlives the stored completion
    now = int(time.time())
    found = alpha.admin.organization.usage.completions(
        start_time=now - now % DAY, end_time=now - now % DAY + DAY, group_by=["api_key_id"]
    )
    assert [
        (r.num_model_requests, r.input_tokens, r.output_tokens, r.api_key_id)
        for bucket in found.data
        for r in bucket.results
    ] == [(4, 4 * plain.usage.prompt_tokens, 4 * plain.usage.completion_tokens,
           served.keys["a"][0])]  # fmt: skip


def test_an_admin_key_is_refused_everywhere_but_usage_and_costs(served: Served) -> None:
    admin = served.client("admin")
    created = served.client("a").chat.completions.create(model="gpt-4o", messages=USER, store=True)
    calls = [
        lambda: admin.chat.completions.create(model="gpt-4o", messages=USER),
        lambda: admin.chat.completions.create(model="gpt-4o", messages=USER, stream=True),
        lambda: admin.chat.completions.list(),
        lambda: admin.chat.completions.retrieve(created.id),
        lambda: admin.chat.completions.delete(created.id),
        lambda: admin.chat.completions.messages.list(created.id),
        lambda: admin.models.list(),
        lambda: admin.responses.create(model="gpt-4o", input="hi"),
        lambda: admin.responses.retrieve("resp_" + "0" * 48),
        lambda: admin.chat.completions.list(extra_query={"search": "hi"}),
    ]
    for call in calls:
        with pytest.raises(openai.AuthenticationError) as refused:
            call()
        assert refused.value.status_code == 401
        body: Any = refused.value.body
        assert body["message"].startswith(
            "You have insufficient permissions for this operation. This is an admin key"
        )
        assert served.keys["admin"][1] not in refused.value.message
    with served.http("admin") as http:
        exported = http.get("/v1/chatkeep/exports/chat_completions?format=jsonl")
        assert exported.status_code == 401 and _errors("ErrorResponse", exported.json()) == []
    assert served.client("a").chat.completions.retrieve(created.id).id == created.id


def _page_of(bucket: int) -> str:
    return "page_" + base64.urlsafe_b64encode(str(bucket).encode()).decode()


USAGE = "/v1/organization/usage/completions"
COSTS = "/v1/organization/costs"
START = f"start_time={T0}"
BAD_INPUTS = [
    (USAGE, "", "start_time"),
    (USAGE, "start_time=abc", "start_time"),
    (USAGE, "start_time=-5", "start_time"),
    (USAGE, "start_time=1e9", "start_time"),
    (USAGE, "start_time=99999999999999", "start_time"),
    # Future, with no end_time: the latest start the range check takes (one fixed value, so
    # that every pytest-xdist worker collects the same test ids).
    (USAGE, f"start_time={MAX_CREATED}", "start_time"),
    (USAGE, f"{START}&end_time={T0}", "end_time"),
    (USAGE, f"{START}&end_time={T0 - 60}", "end_time"),
    (USAGE, f"{START}&end_time=tomorrow", "end_time"),
    (USAGE, f"{START}&bucket_width=1w", "bucket_width"),
    (USAGE, f"{START}&bucket_width=", "bucket_width"),
    (USAGE, f"{START}&group_by=colour", "group_by"),
    (USAGE, f"{START}&group_by[]=model&group_by[]=line_item", "group_by"),
    (USAGE, f"{START}&group_by[]=service_tier", "group_by"),  # not recorded: no false nulls
    (USAGE, f"{START}&limit=0", "limit"),
    (USAGE, f"{START}&limit=32", "limit"),  # 1d: at most 31
    (USAGE, f"{START}&bucket_width=1h&limit=169", "limit"),
    (USAGE, f"{START}&bucket_width=1m&limit=1441", "limit"),
    (USAGE, f"{START}&limit=ten", "limit"),
    (USAGE, f"{START}&page=garbage", "page"),
    (USAGE, f"{START}&page=page_!!!", "page"),
    (USAGE, f"{START}&page={_page_of(T0 + 123)}", "page"),  # not a bucket's start
    (USAGE, f"{START}&page={_page_of(T0 - DAY)}", "page"),  # before the range
    (USAGE, f"{START}&end_time={T0 + DAY}&page={_page_of(T0 + DAY)}", "page"),  # past it
    (USAGE, f"{START}&batch=maybe", "batch"),
    (COSTS, "", "start_time"),
    (COSTS, f"{START}&bucket_width=1h", "bucket_width"),
    (COSTS, f"{START}&limit=181", "limit"),
    (COSTS, f"{START}&group_by[]=model", "group_by"),
    (COSTS, f"{START}&page=page_MTIz", "page"),
]


@pytest.mark.parametrize(("path", "query", "param"), BAD_INPUTS)
def test_bad_inputs_are_400s_naming_their_param(
    served: Served, path: str, query: str, param: str
) -> None:
    with served.http("admin") as http:
        response = http.get(f"{path}?{query}")
    assert response.status_code == 400, response.text
    assert _errors("ErrorResponse", response.json()) == []
    error = response.json()["error"]
    assert (error["param"], error["type"]) == (param, "invalid_request_error")
    assert response.headers["x-should-retry"] == "false"


def test_usage_routes_need_a_key(served: Served) -> None:
    with httpx2.Client(base_url=served.url) as anonymous:
        response = anonymous.get(f"{USAGE}?{START}")
    assert response.status_code == 401
    assert response.json()["error"]["param"] is None


def test_responses_are_counted_with_their_tokens_and_key(served: Served) -> None:
    alpha = served.client("a")
    plain = alpha.responses.create(model="gpt-4o", input="hello there")
    assert plain.usage is not None
    with alpha.responses.stream(model="gpt-4o", input="hello there", store=False) as stream:
        streamed = stream.get_final_response()
    assert streamed.usage == plain.usage
    with pytest.raises(openai.BadRequestError):  # not answered: not counted
        alpha.responses.create(model="gpt-4o", input="hi", background=True)
    now = int(time.time())
    found = alpha.admin.organization.usage.completions(
        start_time=now - now % DAY, end_time=now - now % DAY + DAY, group_by=["api_key_id"]
    )
    assert [
        (r.num_model_requests, r.input_tokens, r.output_tokens, r.api_key_id)
        for bucket in found.data
        for r in bucket.results
    ] == [(2, 2 * plain.usage.input_tokens, 2 * plain.usage.output_tokens,
           served.keys["a"][0])]  # fmt: skip
