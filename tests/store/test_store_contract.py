"""The CompletionStore contract, run against every engine on a real database.

What a user of the API would notice if it broke: a stored completion coming back changed,
a filter letting the wrong completions through, a page walk skipping or repeating items,
another project's data showing, an acknowledged write missing.
"""

from __future__ import annotations

import asyncio
import functools
import random
from typing import Any

import asyncpg
import pytest

from chatkeep.errors import StoreUnavailableError
from chatkeep.ids import CompletionIdGenerator
from chatkeep.protocol.queries import ListQuery
from chatkeep.store.base import NewCompletion
from chatkeep.store.factory import MigratableStore
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.schema import CompletionExistsError
from tests.store.conftest import StoreFactory

pytestmark = pytest.mark.anyio

SEED = 4944116822809979520
_ids = CompletionIdGenerator()


def new_completion(
    project: str = "proj",
    model: str = "echo-1",
    metadata: dict[str, str] | None = None,
    completion_id: str | None = None,
) -> NewCompletion:
    minted, created_ms = _ids.new_id()
    cid = completion_id or minted
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": created_ms // 1000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "héllo 🌍", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        "seed": SEED,
        "temperature": 1.0,
    }
    return NewCompletion(
        id=cid,
        project=project,
        model=model,
        created=created_ms // 1000,
        completion=body,
        metadata=dict(metadata or {}),
        messages=[{"role": "user", "content": f"say hi to {cid}"}],
    )


def served(c: NewCompletion) -> dict[str, Any]:
    return {**c.completion, "metadata": c.metadata}


async def insert_all(store: MigratableStore, completions: list[NewCompletion]) -> None:
    for c in completions:
        await store.insert(c)


async def walk(store: MigratableStore, project: str, query: ListQuery) -> list[str]:
    """Every id a client paging with `limit` and `after` would see."""
    seen: list[str] = []
    after = query.after
    while True:
        page = await store.list(
            project,
            ListQuery(query.limit, query.order, after, query.model, query.metadata),
        )
        seen += [item["id"] for item in page[: query.limit]]
        if len(page) <= query.limit:
            return seen
        after = page[query.limit - 1]["id"]


async def test_insert_then_get_returns_the_object_exactly(store: MigratableStore) -> None:
    c = new_completion(metadata={"user": "alice", "topic": "greeting"})
    c.completion["extremes"] = {"int64_min": -(2**63), "uint64_max": 2**64 - 1, "nul": "a\0b"}
    await store.insert(c)

    got = await store.get("proj", c.id)

    assert got == served(c)
    assert got is not None
    assert got["seed"] == SEED and isinstance(got["seed"], int)
    assert got["extremes"] == {"int64_min": -(2**63), "uint64_max": 2**64 - 1, "nul": "a\0b"}
    # Key order is kept: the stored object is served as it was stored.
    assert list(got) == [*c.completion, "metadata"]


async def test_messages_come_back_as_sent(store: MigratableStore) -> None:
    c = new_completion()
    c.messages[:] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "ünïcode \u2028 ok"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "seed": SEED}]},
    ]
    await store.insert(c)

    assert await store.messages("proj", c.id) == c.messages
    assert await store.messages("proj", new_completion().id) is None


async def test_absent_ids_are_absent_everywhere(store: MigratableStore) -> None:
    missing = new_completion().id

    assert await store.get("proj", missing) is None
    assert await store.messages("proj", missing) is None
    assert await store.update_metadata("proj", missing, {"a": "b"}) is None
    assert await store.delete("proj", missing) is False


async def test_update_metadata_replaces_the_whole_map(store: MigratableStore) -> None:
    c = new_completion(metadata={"a": "1", "b": "2"})
    await store.insert(c)

    updated = await store.update_metadata("proj", c.id, {"c": "3"})

    assert updated == {**c.completion, "metadata": {"c": "3"}}
    assert await store.get("proj", c.id) == updated
    assert await store.list("proj", ListQuery(metadata={"a": "1"})) == []
    assert await store.list("proj", ListQuery(metadata={"c": "3"})) == [updated]


async def test_update_metadata_with_empty_map_clears_it(store: MigratableStore) -> None:
    c = new_completion(metadata={"a": "1"})
    await store.insert(c)

    cleared = await store.update_metadata("proj", c.id, {})

    assert cleared is not None and cleared["metadata"] == {}
    assert (await store.get("proj", c.id) or {})["metadata"] == {}
    assert await store.list("proj", ListQuery(metadata={"a": "1"})) == []
    assert await store.list("proj", ListQuery()) == [cleared]


async def test_deleted_completion_is_gone_from_every_call(store: MigratableStore) -> None:
    c, other = new_completion(metadata={"k": "v"}), new_completion(metadata={"k": "v"})
    await insert_all(store, [c, other])

    assert await store.delete("proj", c.id) is True

    assert await store.get("proj", c.id) is None
    assert await store.messages("proj", c.id) is None
    assert await store.update_metadata("proj", c.id, {"x": "y"}) is None
    assert await store.delete("proj", c.id) is False
    assert await store.list("proj", ListQuery()) == [served(other)]
    assert await store.list("proj", ListQuery(metadata={"k": "v"})) == [served(other)]


async def test_another_projects_completion_is_invisible(store: MigratableStore) -> None:
    c = new_completion(project="alpha", model="m", metadata={"k": "v"})
    await store.insert(c)

    assert await store.get("beta", c.id) is None
    assert await store.messages("beta", c.id) is None
    assert await store.update_metadata("beta", c.id, {"stolen": "yes"}) is None
    assert await store.delete("beta", c.id) is False
    assert await store.list("beta", ListQuery()) == []
    assert await store.list("beta", ListQuery(model="m")) == []
    assert await store.list("beta", ListQuery(metadata={"k": "v"})) == []
    assert await store.list("beta", ListQuery(order="desc")) == []
    # ...and nothing "beta" tried changed it.
    assert await store.get("alpha", c.id) == served(c)
    assert await store.list("alpha", ListQuery(metadata={"k": "v"})) == [served(c)]


async def test_list_filters_by_model_and_metadata_pairs(store: MigratableStore) -> None:
    a = new_completion(model="m1", metadata={"user": "alice", "env": "prod"})
    b = new_completion(model="m2", metadata={"user": "alice", "env": "dev"})
    c = new_completion(model="m1", metadata={"user": "bob", "env": "prod"})
    d = new_completion(model="m1", metadata={"user": "prod"})
    await insert_all(store, [a, b, c, d])

    async def ids(**filters: Any) -> list[str]:
        return [item["id"] for item in await store.list("proj", ListQuery(**filters))]

    assert await ids(model="m1") == [a.id, c.id, d.id]
    assert await ids(model="m3") == []
    assert await ids(metadata={"user": "alice"}) == [a.id, b.id]
    assert await ids(metadata={"user": "alice", "env": "prod"}) == [a.id]
    assert await ids(metadata={"env": "prod", "user": "bob"}) == [c.id]
    assert await ids(metadata={"user": "alice", "env": "test"}) == []
    assert await ids(metadata={"env": "prod"}, model="m1") == [a.id, c.id]
    assert await ids(metadata={"user": "alice"}, model="m2") == [b.id]
    # A value under another key does not match.
    assert await ids(metadata={"env": "alice"}) == []
    assert await ids(metadata={"user": "alice"}, order="desc") == [b.id, a.id]
    items = await store.list("proj", ListQuery(metadata={"user": "bob"}))
    assert items == [served(c)]


async def test_list_orders_and_returns_one_extra_item(store: MigratableStore) -> None:
    cs = [new_completion() for _ in range(5)]
    await insert_all(store, cs)
    ids = [c.id for c in cs]

    async def page(**kw: Any) -> list[str]:
        return [item["id"] for item in await store.list("proj", ListQuery(**kw))]

    assert await page(limit=2) == ids[:3]
    assert await page(limit=2, order="desc") == ids[::-1][:3]
    assert await page(limit=2, after=ids[1]) == ids[2:5]
    assert await page(limit=2, after=ids[3], order="desc") == [ids[2], ids[1], ids[0]]
    assert await page(limit=10) == ids
    assert await page(limit=2, after=ids[-1]) == []
    assert await page(limit=2, after=ids[0], order="desc") == []
    assert await page(limit=1, after=ids[3]) == [ids[4]]


async def test_deleted_after_id_keeps_its_place(store: MigratableStore) -> None:
    cs = [new_completion(metadata={"k": "v"}) for _ in range(6)]
    await insert_all(store, cs)
    ids = [c.id for c in cs]
    await store.delete("proj", ids[2])

    async def page(**kw: Any) -> list[str]:
        return [item["id"] for item in await store.list("proj", ListQuery(**kw))]

    assert await page(after=ids[2]) == ids[3:]
    assert await page(after=ids[2], order="desc") == [ids[1], ids[0]]
    assert await page(after=ids[2], metadata={"k": "v"}) == ids[3:]
    assert await page(after=ids[2], metadata={"k": "v"}, order="desc") == [ids[1], ids[0]]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("filtered", [False, True], ids=["all", "metadata"])
async def test_cursor_walk_survives_concurrent_writes(
    store: MigratableStore, order: str, filtered: bool
) -> None:
    rng = random.Random(7)
    metadata = {"walk": "yes"}
    before = [new_completion(metadata=metadata) for _ in range(250)]
    await insert_all(store, before)
    doomed = set(rng.sample([c.id for c in before], 60))
    query = ListQuery(limit=20, order="asc" if order == "asc" else "desc")
    query = ListQuery(query.limit, query.order, None, None, metadata if filtered else {})

    seen: list[str] = []
    added: list[str] = []
    after: str | None = None
    while True:
        added_before_page = list(added)
        page_query = ListQuery(query.limit, query.order, after, None, query.metadata)
        page, _ = await asyncio.gather(
            store.list("proj", page_query), churn(store, rng, doomed, added, metadata)
        )
        seen += [item["id"] for item in page[: query.limit]]
        if len(page) <= query.limit:
            break
        after = page[query.limit - 1]["id"]
        # The cursor's own item disappears before the next page is asked for.
        if after not in doomed:
            await store.delete("proj", after)

    assert len(seen) == len(set(seen)), "an item was served twice"
    survivors = {c.id for c in before} - doomed
    assert survivors <= set(seen), "an item that existed all along was skipped"
    expected = sorted(seen, reverse=order == "desc")
    assert seen == expected
    if order == "asc":  # new ids sort after every cursor, so an ascending walk reaches them
        assert set(added_before_page) <= set(seen)


async def churn(
    store: MigratableStore,
    rng: random.Random,
    doomed: set[str],
    added: list[str],
    metadata: dict[str, str],
) -> None:
    """Delete a few doomed items and insert a few new ones, interleaved with a page read."""
    pending = [cid for cid in sorted(doomed) if rng.random() < 0.3]
    for cid in pending:
        await store.delete("proj", cid)
        await asyncio.sleep(0)
    for _ in range(3):
        c = new_completion(metadata=metadata)
        await store.insert(c)
        added.append(c.id)


async def test_concurrent_inserts_all_land(store: MigratableStore) -> None:
    cs = [new_completion(metadata={"n": str(i)}) for i in range(200)]

    await asyncio.gather(*(store.insert(c) for c in cs))

    assert await walk(store, "proj", ListQuery(limit=100)) == sorted(c.id for c in cs)
    got = await asyncio.gather(*(store.get("proj", c.id) for c in cs))
    assert got == [served(c) for c in cs]


async def test_one_failing_write_fails_alone(store: MigratableStore) -> None:
    existing = new_completion(metadata={"who": "first"})
    await store.insert(existing)
    cs = [new_completion(metadata={"n": str(i)}) for i in range(60)]
    cs[10] = new_completion(completion_id=existing.id, metadata={"who": "impostor"})
    cs[31] = new_completion(completion_id=cs[30].id)

    results = await asyncio.gather(*(store.insert(c) for c in cs), return_exceptions=True)

    assert isinstance(results[10], CompletionExistsError)
    pair = results[30:32]
    assert sum(isinstance(r, CompletionExistsError) for r in pair) == 1
    assert sum(r is None for r in pair) == 1
    others = [r for i, r in enumerate(results) if i not in (10, 30, 31)]
    assert others == [None] * 57
    assert await store.get("proj", existing.id) == served(existing)
    stored = await walk(store, "proj", ListQuery(limit=100))
    assert len(stored) == 1 + 58


async def test_close_finishes_queued_writes(make_store: StoreFactory) -> None:
    store = make_store()
    await store.open()
    cs = [new_completion() for _ in range(300)]
    tasks = [asyncio.create_task(store.insert(c)) for c in cs]
    await asyncio.sleep(0)  # every insert is queued; few are committed yet

    await store.close()

    assert [task.result() for task in tasks] == [None] * 300
    reopened = make_store()
    await reopened.open()
    try:
        assert await walk(reopened, "proj", ListQuery(limit=100)) == [c.id for c in cs]
    finally:
        await reopened.close()


async def test_ping_answers(store: MigratableStore) -> None:
    await store.ping()


async def test_closed_store_is_unavailable(make_store: StoreFactory) -> None:
    store = make_store()
    await store.open()
    await store.close()

    with pytest.raises(StoreUnavailableError):
        await store.get("proj", new_completion().id)
    with pytest.raises(StoreUnavailableError):
        await store.insert(new_completion())


# PostgreSQL only: the server going away and coming back. -------------------------------


class TcpRelay:
    """A TCP relay in front of PostgreSQL that can drop every connection and stop
    listening, which is what the store sees when the server goes down."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        # `stop()`s so far: a connection accepted before the latest one is dropped, also
        # one still connecting upstream when it came (else it would outlive the cut).
        self._cuts = 0

    async def start(self) -> None:
        relay = functools.partial(self._relay, self._cuts)
        self._server = await asyncio.start_server(relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._cuts += 1
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(
        self, accepted_at: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.transport.abort()

        ends = [writer]
        self._writers.add(writer)
        try:
            if accepted_at != self._cuts:  # accepted just before a cut
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            ends.append(up_writer)
            self._writers.add(up_writer)
            if accepted_at != self._cuts:  # cut while connecting upstream
                return
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except OSError:
            pass  # PostgreSQL refused: the client sees its connection drop
        finally:
            for end in ends:
                end.transport.abort()
                self._writers.discard(end)


async def test_postgres_outage_is_503_then_recovers_without_restart(postgres_url: str) -> None:
    host_port, database = postgres_url.split("@", 1)[1].rsplit("/", 1)
    relay = TcpRelay(int(host_port.rsplit(":", 1)[1]))
    await relay.start()
    url = f"{postgres_url.split('@', 1)[0]}@127.0.0.1:{relay.port}/{database}"
    store = PostgresStore(url, pool_min=2, pool_max=4, connect_timeout=2)
    await store.open()
    try:
        c = new_completion()
        await store.insert(c)

        await relay.stop()
        with pytest.raises(StoreUnavailableError):
            await store.get("proj", c.id)
        with pytest.raises(StoreUnavailableError):
            await store.insert(new_completion())
        with pytest.raises(StoreUnavailableError):
            await store.ping()

        await relay.start()  # same port: "PostgreSQL is back"
        assert await store.get("proj", c.id) == served(c)
        later = new_completion()
        await store.insert(later)
        assert [item["id"] for item in await store.list("proj", ListQuery())] == [c.id, later.id]
    finally:
        await store.close()
        await relay.stop()


async def test_postgres_restart_of_backends_is_hidden_from_reads(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, pool_min=4, pool_max=4)
    await store.open()
    try:
        c = new_completion()
        await store.insert(c)
        # What a server restart does to every pooled connection.
        admin = await asyncpg.connect(postgres_url)
        try:
            killed = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert len(killed) == 4

        results = await asyncio.gather(*(store.get("proj", c.id) for _ in range(8)))

        assert results == [served(c)] * 8
        await store.insert(new_completion())
    finally:
        await store.close()


async def test_postgres_inserts_arriving_together_share_a_transaction(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, pool_min=1, pool_max=4, batch_size=50)
    await store.open()
    try:
        cs = [new_completion() for _ in range(200)]

        await asyncio.gather(*(store.insert(c) for c in cs))

        assert 4 <= store.write_transactions <= 20
        assert len(await walk(store, "proj", ListQuery(limit=100))) == 200
    finally:
        await store.close()
