"""The KeyStore on every engine, on the completion store's own database and connections."""

from __future__ import annotations

import asyncio

import pytest

from chatkeep.service.keys import create_api_key, hash_key, list_api_keys, revoke_api_key
from chatkeep.store.factory import MigratableStore, key_store_for
from chatkeep.store.keys import KeyExistsError, NewApiKey
from chatkeep.store.schema import MIGRATIONS
from tests.store.conftest import RawExecute, StoreFactory
from tests.store.test_store_contract import new_completion

pytestmark = pytest.mark.anyio


async def test_a_created_key_is_found_by_its_hash_only(store: MigratableStore) -> None:
    keys = key_store_for(store)
    assert await keys.has_keys() is False
    created = await create_api_key(keys, "alpha", "ci")
    assert await keys.has_keys() is True

    found = await keys.find_key(hash_key(created.secret))
    assert found is not None
    assert found.key == created.key and found.key_hash == hash_key(created.secret)
    assert (found.key.project, found.key.label, found.key.active) == ("alpha", "ci", True)
    assert found.key.prefix == created.secret[:10]
    assert await keys.find_key(hash_key(created.secret + "x")) is None
    assert await keys.find_key(created.secret) is None  # the secret is no lookup key


async def test_revoked_keys_stay_listed_and_keep_their_first_revocation_time(
    store: MigratableStore,
) -> None:
    keys = key_store_for(store)
    first = await create_api_key(keys, "alpha")
    second = await create_api_key(keys, "beta")
    revoked = await keys.revoke_key(first.key.id, 1_000)
    assert revoked is not None and revoked.revoked == 1_000 and not revoked.active
    again = await keys.revoke_key(first.key.id, 2_000)
    assert again is not None and again.revoked == 1_000
    assert await keys.revoke_key("key_unknown", 3_000) is None

    listed = {key.id: key for key in await list_api_keys(keys)}
    assert set(listed) == {first.key.id, second.key.id}
    assert listed[first.key.id].revoked == 1_000 and listed[second.key.id].active
    assert [key.id for key in await list_api_keys(keys, "beta")] == [second.key.id]
    found = await keys.find_key(hash_key(first.secret))
    assert found is not None and found.key.revoked == 1_000
    assert (await revoke_api_key(keys, second.key.id)) is not None
    assert await keys.has_keys() is True  # revoked keys still count: the door stays shut


async def test_last_used_only_moves_forward(store: MigratableStore) -> None:
    keys = key_store_for(store)
    a, b = await create_api_key(keys, "alpha"), await create_api_key(keys, "beta")
    await keys.record_use({a.key.id: 500, b.key.id: 700})
    await keys.record_use({a.key.id: 400})  # another server, behind: ignored
    await keys.record_use({})
    listed = {key.id: key.last_used for key in await keys.list_keys()}
    assert listed == {a.key.id: 500, b.key.id: 700}


async def test_a_duplicate_hash_is_refused(store: MigratableStore) -> None:
    keys = key_store_for(store)
    key = NewApiKey("key_1", "alpha", None, "sk-ck-abcd", hash_key("sk-ck-same"), 1)
    await keys.insert_key(key)
    with pytest.raises(KeyExistsError):
        await keys.insert_key(NewApiKey("key_2", "beta", None, "sk-ck-abcd", key.key_hash, 1))
    with pytest.raises(KeyExistsError):
        await keys.insert_key(NewApiKey("key_1", "beta", None, "sk-ck-abcd", "0" * 64, 1))
    assert [k.id for k in await keys.list_keys()] == ["key_1"]


async def test_key_writes_interleave_with_completion_inserts(store: MigratableStore) -> None:
    keys = key_store_for(store)
    made = await asyncio.gather(
        *(create_api_key(keys, f"p{i}") for i in range(20)),
        *(store.insert(new_completion()) for _ in range(20)),
    )
    assert len(await keys.list_keys()) == 20 and len(made) == 40


async def test_an_older_database_gets_the_keys_table_on_upgrade(
    make_store: StoreFactory, raw_execute: RawExecute
) -> None:
    await make_store().upgrade(through="0002_filter_indexes")
    later = [m.name for m in MIGRATIONS][2:]
    assert later[0] == "0003_api_keys"
    assert await make_store().pending_migrations() == later
    assert await make_store().upgrade() == later
    store = make_store()
    await store.open()
    try:
        await create_api_key(key_store_for(store), "alpha")
    finally:
        await store.close()
    assert (await raw_execute("SELECT count(*) FROM api_keys"))[0][0] == 1


def test_stores_without_a_key_store_are_named() -> None:
    with pytest.raises(TypeError, match="key_store="):
        key_store_for(object())  # type: ignore[arg-type]
