"""Schema migrations on every engine: from a blank database, and from an older schema.

A first run must just work; a database with data and an older schema must be refused
until `chatkeep db upgrade`, and keep all of its data through the upgrade.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatkeep.config import Settings
from chatkeep.protocol.queries import ListQuery, Order
from chatkeep.protocol.search import parse_search
from chatkeep.store.factory import open_store
from chatkeep.store.postgres import PostgresStore
from chatkeep.store.queries import list_sql
from chatkeep.store.schema import (
    MIGRATIONS,
    SchemaAheadError,
    SchemaBehindError,
    for_sqlite,
)
from chatkeep.store.sqlite import SQLiteStore
from chatkeep.store.sqlite_driver import sqlite3
from tests.store.conftest import RawExecute, StoreFactory
from tests.store.test_store_contract import new_completion, served

pytestmark = pytest.mark.anyio

ALL = [m.name for m in MIGRATIONS]
FIRST = MIGRATIONS[0].name


async def test_a_blank_database_is_migrated_on_open(
    make_store: StoreFactory, raw_execute: RawExecute
) -> None:
    store = make_store()
    assert await store.pending_migrations() == ALL

    await store.open()
    try:
        assert await store.pending_migrations() == []
        assert await store.upgrade() == []
        c = new_completion(metadata={"k": "v"})
        await store.insert(c)
        assert await store.list("proj", ListQuery(metadata={"k": "v"})) == [served(c)]
    finally:
        await store.close()
    recorded = await raw_execute("SELECT name FROM chatkeep_migrations ORDER BY name")
    assert [row[0] for row in recorded] == ALL


async def test_reopening_a_current_database_keeps_its_data(make_store: StoreFactory) -> None:
    c = new_completion(metadata={"k": "v"})
    first = make_store()
    await first.open()
    await first.insert(c)
    await first.close()

    again = make_store()
    await again.open()
    try:
        assert await again.get("proj", c.id) == served(c)
    finally:
        await again.close()


async def test_an_older_schema_is_refused_until_upgraded(
    make_store: StoreFactory, raw_execute: RawExecute
) -> None:
    old = new_completion(model="m1", metadata={"user": "alice", "env": "prod"})
    assert await make_store().upgrade(through=FIRST) == [FIRST]
    # A completion written by the chatkeep that had only the first schema.
    await raw_execute(
        "INSERT INTO completions (project, id, model, created, completion, metadata, messages) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        old.project, old.id, old.model, old.created,
        f'{{"id": "{old.id}", "seed": 4944116822809979520}}',
        '{"user": "alice", "env": "prod"}', '[{"role": "user", "content": "hi"}]',
    )  # fmt: skip

    store = make_store()
    with pytest.raises(SchemaBehindError, match="chatkeep db upgrade") as refused:
        await store.open()
    assert refused.value.pending == ALL[1:]
    assert await store.pending_migrations() == ALL[1:]

    assert await store.upgrade() == ALL[1:]
    await store.open()
    try:
        expected = {"id": old.id, "seed": 4944116822809979520, "metadata": old.metadata}
        assert await store.get("proj", old.id) == expected
        assert await store.messages("proj", old.id) == [{"role": "user", "content": "hi"}]
        # The older completion's metadata was indexed by the upgrade.
        query = ListQuery(metadata={"env": "prod", "user": "alice"}, model="m1")
        assert await store.list("proj", query) == [expected]
        new = new_completion(model="m1", metadata={"env": "prod", "user": "alice"})
        await store.insert(new)
        assert [item["id"] for item in await store.list("proj", query)] == [old.id, new.id]
        # And its text was indexed for search, beside the new one's.
        search = ListQuery(search=parse_search("hi"))
        assert [item["id"] for item in await store.list("proj", search)] == [old.id, new.id]
    finally:
        await store.close()


async def test_a_newer_schema_is_refused(make_store: StoreFactory, raw_execute: RawExecute) -> None:
    await make_store().upgrade()
    await raw_execute("INSERT INTO chatkeep_migrations (name) VALUES ($1)", "9999_from_the_future")

    store = make_store()
    with pytest.raises(SchemaAheadError, match="9999_from_the_future"):
        await store.open()
    with pytest.raises(SchemaAheadError):
        await store.pending_migrations()


async def test_upgrade_through_an_unknown_migration_is_refused(make_store: StoreFactory) -> None:
    with pytest.raises(ValueError, match="no_such_migration"):
        await make_store().upgrade(through="no_such_migration")


async def test_migrations_have_unique_ordered_names() -> None:
    assert sorted(set(ALL)) == ALL
    for migration in MIGRATIONS:
        assert migration.sqlite or migration.postgres  # 0009 is SQLite's alone


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_sqlite_pages_walk_an_index_without_sorting(tmp_path: Path, order: Order) -> None:
    path = tmp_path / "plans.db"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    cursor = "chatcmpl-00000000000000000000000000000"
    cases = {
        "completion_metadata_filter": ListQuery(
            order=order, after=cursor, metadata={"a": "1", "b": "2"}
        ),
        "completions_model": ListQuery(order=order, after=cursor, model="m"),
        "sqlite_autoindex_completions_1": ListQuery(order=order, after=cursor),
    }
    conn = sqlite3.connect(path)
    try:
        for index, query in cases.items():
            sql, params = list_sql("proj", query, "sqlite")
            explained = conn.execute("EXPLAIN QUERY PLAN " + for_sqlite(sql), params)
            plan = " | ".join(row[3] for row in explained)
            assert index in plan, plan
            assert "TEMP B-TREE" not in plan, plan
    finally:
        conn.close()


# Choosing the engine by URL (`open_store`), which is where every database is first opened.


async def test_sqlite_urls_name_relative_and_absolute_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    absolute = tmp_path / "abs" / "chatkeep.db"
    absolute.parent.mkdir()
    for url, path in [("sqlite:///relative.db", tmp_path / "relative.db"),
                      (f"sqlite:///{absolute}", absolute)]:  # fmt: skip
        store = open_store(Settings(database_url=url, store_batch_size=7))
        assert isinstance(store, SQLiteStore)
        await store.open()
        c = new_completion()
        await store.insert(c)
        await store.close()
        assert path.exists(), url


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_urls_choose_postgres(scheme: str) -> None:
    store = open_store(Settings(database_url=f"{scheme}://user:pw@db.example/chatkeep"))
    assert isinstance(store, PostgresStore)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root:hunter2@db/chatkeep", "scheme 'mysql'"),
        ("chatkeep.db", "scheme (none)"),
        ("sqlite://chatkeep.db", "three slashes"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_unsupported_urls_are_refused_without_echoing_secrets(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        open_store(Settings(database_url=url))
    assert "hunter2" not in str(refused.value)
