"""Two projects on one server, through the official client: neither can read, list, change
or delete the other's completions, nor learn that they exist.

Every endpoint is tried by each project on its own ids, on the other project's ids and on
ids that were never stored; the other project's ids must answer exactly as unknown ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
import pytest

from chatkeep.ids import BASE62, CompletionIdGenerator
from chatkeep.protocol.queries import Order
from tests.api.keyed import Caller, keyed_server

# Created in this order, so that each project's ids interleave with the other's.
PLAN = [("alpha", "m1"), ("beta", "m1"), ("alpha", "m2"), ("beta", "m2"), ("alpha", "m1")]
ENDPOINTS = ["retrieve", "update", "delete", "messages", "messages after"]


@dataclass
class World:
    callers: dict[str, Caller]
    ids: dict[str, list[str]]
    models: dict[str, str]

    def other(self, project: str) -> Caller:
        return self.callers["beta" if project == "alpha" else "alpha"]


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with keyed_server(database_url) as (_, callers):
        ids: dict[str, list[str]] = {"alpha": [], "beta": []}
        models: dict[str, str] = {}
        for n, (project, model) in enumerate(PLAN):
            completion = callers[project].client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": f"{project} private note {n}"}],
                store=True,
                metadata={"team": "shared", "n": str(len(ids[project]))},
            )
            ids[project].append(completion.id)
            models[completion.id] = model
        yield World(callers, ids, models)


def never_stored() -> str:
    return CompletionIdGenerator().new_id()[0]


def call(client: openai.OpenAI, endpoint: str, completion_id: str) -> Any:
    completions = client.chat.completions
    if endpoint == "retrieve":
        return completions.retrieve(completion_id)
    if endpoint == "update":
        return completions.update(completion_id, metadata={"changed": "by someone"})
    if endpoint == "delete":
        return completions.delete(completion_id)
    if endpoint == "messages":
        return completions.messages.list(completion_id)
    return completions.messages.list(completion_id, after=f"{completion_id}-0")


def not_found(client: openai.OpenAI, endpoint: str, completion_id: str) -> httpx2.Response:
    with pytest.raises(openai.NotFoundError) as refused:
        call(client, endpoint, completion_id)
    return refused.value.response


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("project", ["alpha", "beta"])
def test_own_ids_answer(world: World, project: str, endpoint: str) -> None:
    caller = world.callers[project]
    own = world.ids[project][0]
    answer = call(caller.client, endpoint, own)
    if endpoint == "retrieve":
        assert answer.id == own and answer.metadata == {"team": "shared", "n": "0"}
    elif endpoint == "update":
        assert answer.metadata == {"changed": "by someone"}
    elif endpoint == "delete":
        assert answer.deleted is True
        assert [c.id for c in caller.client.chat.completions.list()] == world.ids[project][1:]
    elif endpoint == "messages":
        assert [m.content for m in answer.data] == [
            f"{project} private note {PLAN.index((project, 'm1'))}"
        ]
    else:
        assert answer.data == [] and answer.has_more is False  # its one message is the cursor


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("project", ["alpha", "beta"])
def test_foreign_ids_answer_exactly_as_unknown_ids(
    world: World, project: str, endpoint: str
) -> None:
    caller, owner = world.callers[project], world.other(project)
    foreign, unknown = world.ids[owner.project][0], never_stored()

    refused = not_found(caller.client, endpoint, foreign)
    unheard_of = not_found(caller.client, endpoint, unknown)

    assert refused.status_code == unheard_of.status_code == 404
    assert refused.text.replace(foreign, "ID") == unheard_of.text.replace(unknown, "ID")
    varying = {"x-request-id", "openai-processing-ms", "date", "content-length"}
    assert {k: v for k, v in refused.headers.items() if k not in varying} == {
        k: v for k, v in unheard_of.headers.items() if k not in varying
    }
    assert refused.headers["x-should-retry"] == "false"
    # And the owner's completion is as it was.
    mine = owner.client.chat.completions.retrieve(foreign)
    assert mine.metadata == {"team": "shared", "n": "0"}
    assert [m.content for m in owner.client.chat.completions.messages.list(foreign)] == [
        f"{owner.project} private note {PLAN.index((owner.project, 'm1'))}"
    ]


@pytest.mark.parametrize("project", ["alpha", "beta"])
def test_a_deleted_foreign_id_stays_gone_for_everyone_else(world: World, project: str) -> None:
    caller, owner = world.callers[project], world.other(project)
    foreign = world.ids[owner.project][-1]
    owner.client.chat.completions.delete(foreign)
    for endpoint in ENDPOINTS:
        assert not_found(caller.client, endpoint, foreign).status_code == 404
        assert not_found(owner.client, endpoint, foreign).status_code == 404


def _list(client: openai.OpenAI, **query: Any) -> list[str]:
    return [c.id for c in client.chat.completions.list(**query)]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("project", ["alpha", "beta"])
def test_lists_hold_only_the_callers_completions(world: World, project: str, order: Order) -> None:
    caller = world.callers[project]
    own = world.ids[project] if order == "asc" else world.ids[project][::-1]
    assert _list(caller.client, order=order) == own
    assert _list(caller.client, order=order, limit=1) == own  # walked page by page
    for model in ("m1", "m2"):
        expected = [i for i in own if world.models[i] == model]
        assert _list(caller.client, order=order, model=model) == expected
    assert _list(caller.client, order=order, metadata={"team": "shared"}) == own
    first = world.ids[project][0]
    assert _list(caller.client, order=order, metadata={"team": "shared", "n": "0"}) == [first]
    assert _list(caller.client, order=order, model="m1", metadata={"n": "0"}) == [first]
    assert _list(caller.client, order=order, metadata={"team": "nobody"}) == []


def _neighbour(completion_id: str) -> str:
    """A never-stored id right next to `completion_id`: no other id lies between them."""
    last = BASE62.index(completion_id[-1])
    return completion_id[:-1] + BASE62[last - 1 if last > 0 else last + 1]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("project", ["alpha", "beta"])
def test_a_foreign_cursor_is_only_a_position(world: World, project: str, order: Order) -> None:
    caller, owner = world.callers[project], world.other(project)
    own = world.ids[project]
    before: Callable[[str, str], bool] = (
        (lambda a, b: a > b) if order == "asc" else (lambda a, b: a < b)
    )
    for foreign in world.ids[owner.project]:
        expected = [i for i in (own if order == "asc" else own[::-1]) if before(i, foreign)]
        assert _list(caller.client, order=order, after=foreign) == expected
        page = caller.client.chat.completions.list(order=order, after=foreign, limit=1)
        assert [c.id for c in page.data] == expected[:1]
        assert page.has_more is (len(expected) > 1)
        # Exactly what an unknown id in the same place gives.
        unknown = _neighbour(foreign)
        assert _list(caller.client, order=order, after=unknown) == expected
    assert _list(caller.client, order=order, after=never_stored()) == (
        [] if order == "asc" else own[::-1]
    )


@pytest.mark.parametrize("project", ["alpha", "beta"])
def test_filters_cannot_reach_across(world: World, project: str) -> None:
    caller, owner = world.callers[project], world.other(project)
    owner.client.chat.completions.update(world.ids[owner.project][0], metadata={"only": "theirs"})
    owner_model = owner.client.chat.completions.create(
        model="theirs-only", messages=[{"role": "user", "content": "x"}], store=True
    )
    assert _list(caller.client, metadata={"only": "theirs"}) == []
    assert _list(caller.client, model="theirs-only") == []
    assert _list(owner.client, model="theirs-only") == [owner_model.id]


def test_streamed_completions_are_stored_in_the_callers_project(world: World) -> None:
    alpha, beta = world.callers["alpha"], world.callers["beta"]
    with alpha.client.chat.completions.stream(
        model="m1", messages=[{"role": "user", "content": "streamed"}], store=True
    ) as stream:
        streamed = stream.get_final_completion()
    assert alpha.client.chat.completions.retrieve(streamed.id).id == streamed.id
    assert not_found(beta.client, "retrieve", streamed.id).status_code == 404
    assert streamed.id not in _list(beta.client, order="desc")
