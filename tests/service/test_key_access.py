"""The authenticator's promises over time, on a controlled clock: a revoked key stops
working within the cache time, a first key closes an open server within it, a burst of
calls costs one database read, and `last_used` is written in the background, once a
minute per key at most."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import pytest

from chatkeep.errors import AuthenticationError, StoreUnavailableError
from chatkeep.service.access import is_loopback_host
from chatkeep.service.key_access import KeyAccess, bearer_token
from chatkeep.service.keys import hash_key, mask_key, new_secret
from chatkeep.store.keys import ApiKey, NewApiKey, StoredKey

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class MemoryKeys:
    """A KeyStore in a dict, counting the reads a real database would serve."""

    def __init__(self) -> None:
        self.keys: dict[str, StoredKey] = {}
        self.finds = 0
        self.checks = 0
        self.uses: list[dict[str, int]] = []
        self.gate: asyncio.Event | None = None
        self.failing = False

    def add(self, project: str) -> tuple[str, str]:
        secret = new_secret()
        key = ApiKey(f"key_{len(self.keys)}", project, None, secret[:10], 1, None, None)
        self.keys[hash_key(secret)] = StoredKey(key, hash_key(secret))
        return key.id, secret

    def revoke(self, key_id: str) -> None:
        for key_hash, stored in self.keys.items():
            if stored.key.id == key_id:
                key = stored.key
                revoked = ApiKey(key.id, key.project, None, key.prefix, 1, None, 2)
                self.keys[key_hash] = StoredKey(revoked, key_hash)

    async def insert_key(self, key: NewApiKey) -> None:
        raise NotImplementedError

    async def find_key(self, key_hash: str) -> StoredKey | None:
        self.finds += 1
        if self.failing:
            raise StoreUnavailableError("The database is unavailable.")
        if self.gate is not None:
            await self.gate.wait()
        return self.keys.get(key_hash)

    async def list_keys(self) -> list[ApiKey]:
        return [stored.key for stored in self.keys.values()]

    async def revoke_key(self, key_id: str, revoked: int) -> ApiKey | None:
        raise NotImplementedError

    async def record_use(self, last_used: Mapping[str, int]) -> None:
        if self.failing:
            raise StoreUnavailableError("The database is unavailable.")
        self.uses.append(dict(last_used))

    async def has_keys(self) -> bool:
        self.checks += 1
        return bool(self.keys)


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def access(keys: MemoryKeys, clock: Clock, *, allow_open: bool = False) -> KeyAccess:
    return KeyAccess(
        keys, allow_open=allow_open, cache_seconds=5, clock=clock, now=lambda: clock.now
    )


async def test_a_revoked_key_works_until_the_cache_time_is_up_and_never_after() -> None:
    keys, clock = MemoryKeys(), Clock()
    key_id, secret = keys.add("alpha")
    auth = access(keys, clock)
    assert await auth.project_for(bearer(secret)) == "alpha"
    keys.revoke(key_id)
    clock.now += 4.9
    assert await auth.project_for(bearer(secret)) == "alpha"  # trusted, not re-read
    assert keys.finds == 1
    clock.now += 0.2
    with pytest.raises(AuthenticationError) as refused:
        await auth.project_for(bearer(secret))
    assert refused.value.code == "invalid_api_key"
    assert keys.finds == 2


async def test_a_ui_session_by_key_hash_shares_the_keys_cache_and_revocation() -> None:
    keys, clock = MemoryKeys(), Clock()
    key_id, secret = keys.add("alpha")
    auth = access(keys, clock)
    assert await auth.project_for_key_hash(hash_key(secret)) == "alpha"
    assert await auth.project_for(bearer(secret)) == "alpha"
    assert keys.finds == 1  # one cache for both ways in
    keys.revoke(key_id)
    clock.now += 5.1
    with pytest.raises(AuthenticationError) as refused:
        await auth.project_for_key_hash(hash_key(secret))
    assert "revoked" in refused.value.message and secret not in refused.value.message
    with pytest.raises(AuthenticationError):
        await auth.project_for_key_hash(hash_key("sk-ck-never-made"))


async def test_an_open_server_takes_no_ui_session_of_an_unknown_key() -> None:
    keys, clock = MemoryKeys(), Clock()
    auth = access(keys, clock, allow_open=True)
    assert await auth.project_for({}) == "default"
    with pytest.raises(AuthenticationError):
        await auth.project_for_key_hash(hash_key(new_secret()))


async def test_without_a_cache_every_call_reads_the_database() -> None:
    keys, clock = MemoryKeys(), Clock()
    key_id, secret = keys.add("alpha")
    auth = KeyAccess(keys, allow_open=False, cache_seconds=0, clock=clock)
    assert await auth.project_for(bearer(secret)) == "alpha"
    keys.revoke(key_id)
    with pytest.raises(AuthenticationError):
        await auth.project_for(bearer(secret))


async def test_a_burst_of_calls_with_one_key_costs_one_read() -> None:
    keys, clock = MemoryKeys(), Clock()
    _, secret = keys.add("alpha")
    keys.gate = asyncio.Event()
    auth = access(keys, clock)
    calls = [asyncio.create_task(auth.project_for(bearer(secret))) for _ in range(200)]
    await asyncio.sleep(0)
    calls[0].cancel()  # one caller leaving does not cancel the others' answer
    keys.gate.set()
    results = await asyncio.gather(*calls[1:])
    assert results == ["alpha"] * 199 and keys.finds == 1


async def test_a_database_outage_is_a_503_not_a_401() -> None:
    keys, clock = MemoryKeys(), Clock()
    _, secret = keys.add("alpha")
    keys.failing = True
    with pytest.raises(StoreUnavailableError):
        await access(keys, clock).project_for(bearer(secret))


async def test_last_used_is_written_in_the_background_once_a_minute_per_key() -> None:
    keys, clock = MemoryKeys(), Clock()
    a_id, a = keys.add("alpha")
    b_id, b = keys.add("beta")
    auth = access(keys, clock)
    for _ in range(100):
        await auth.project_for(bearer(a))
        clock.now += 0.5  # 50 s in all
    await auth.project_for(bearer(b))
    assert keys.uses == []  # nothing written on the request path
    await auth.flush_use()
    assert keys.uses == [{a_id: 1_000, b_id: 1_050}]
    await auth.flush_use()
    assert len(keys.uses) == 1  # nothing new to write
    clock.now += 10  # a's first use was 60 s ago now
    await auth.project_for(bearer(a))
    await auth.project_for(bearer(b))
    await auth.aclose()  # the last times are written on shutdown
    assert keys.uses[1:] == [{a_id: 1_060}]


async def test_last_used_times_survive_a_failed_write(caplog: pytest.LogCaptureFixture) -> None:
    keys, clock = MemoryKeys(), Clock()
    key_id, secret = keys.add("alpha")
    auth = access(keys, clock)
    await auth.project_for(bearer(secret))
    keys.failing = True
    await auth.flush_use()
    assert "could not record when API keys were last used" in caplog.text
    keys.failing = False
    await auth.flush_use()
    assert keys.uses == [{key_id: 1_000}]


async def test_an_open_server_rereads_the_key_count_once_per_cache_time() -> None:
    keys, clock = MemoryKeys(), Clock()
    auth = access(keys, clock, allow_open=True)
    await auth.start()
    try:
        for _ in range(50):
            assert await auth.project_for({}) == "default"
        assert keys.checks == 1 and auth.is_open
        _, secret = keys.add("alpha")
        clock.now += 4.9
        assert await auth.project_for({}) == "default"  # the door is open for at most 5 s
        clock.now += 0.2
        with pytest.raises(AuthenticationError):
            await auth.project_for({})
        assert not auth.is_open and keys.checks == 2
        assert await auth.project_for(bearer(secret)) == "alpha"
        keys.keys.clear()  # even if the keys vanished, this server stays shut
        clock.now += 60
        with pytest.raises(AuthenticationError):
            await auth.project_for({})
    finally:
        await auth.aclose()


async def test_an_open_server_ignores_tokens_that_are_not_chatkeep_keys() -> None:
    keys, clock = MemoryKeys(), Clock()
    auth = access(keys, clock, allow_open=True)
    assert await auth.project_for(bearer("sk-chatkeep-test")) == "default"
    assert await auth.project_for(bearer(new_secret())) == "default"
    assert keys.finds == 1  # only the one shaped like a chatkeep key was looked up


async def test_the_cache_stays_bounded() -> None:
    keys, clock = MemoryKeys(), Clock()
    secrets = [keys.add("alpha")[1] for _ in range(30)]
    auth = KeyAccess(keys, allow_open=False, cache_seconds=5, max_cached=8, clock=clock)
    for secret in secrets:
        assert await auth.project_for(bearer(secret)) == "alpha"
    assert len(auth._cache) <= 8


async def test_start_says_which_posture_the_server_is_in(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="chatkeep")
    for allow_open, insecure, has_key, expected in [
        (True, False, False, "runs OPEN on this loopback address"),
        (True, True, False, "INSECURE: --insecure-no-auth"),
        (False, False, False, "every call is refused (401)"),
        (False, False, True, "API keys are required"),
    ]:
        keys, clock = MemoryKeys(), Clock()
        if has_key:
            keys.add("alpha")
        auth = KeyAccess(keys, allow_open=allow_open, insecure=insecure, clock=clock)
        caplog.clear()
        await auth.start()
        await auth.aclose()
        assert expected in caplog.text


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic abc", None),
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER  abc  ", "abc"),
        ("Bearer a b", "a b"),
    ],
)
def test_bearer_tokens(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_masks_never_show_a_key_whole() -> None:
    secret = new_secret()
    assert mask_key(secret) == f"sk-ck-...{secret[-4:]}"
    assert mask_key("short-key") == "***"
    assert mask_key("x" * 31) == "***"
