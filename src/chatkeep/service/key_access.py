"""Key-based access: `Authorization: Bearer <key>` names the caller's project, on every call.

The hot path is a SHA-256 and a dict lookup: what the database said about a key is trusted
for `cache_seconds` (so a revocation takes effect within that time, on every server),
concurrent misses for one key share one query, and `last_used` is written by a background
task, at most once a minute per key. While the database holds no key at all and the server
may run open, every call is in the default project; that too is re-read every
`cache_seconds`, so a first key closes an open server within that time. See docs/keys.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from chatkeep.config import Settings
from chatkeep.errors import AuthenticationError
from chatkeep.service.access import Caller, is_loopback_host
from chatkeep.service.keys import hash_key, looks_like_key, mask_key
from chatkeep.store.base import DEFAULT_PROJECT
from chatkeep.store.keys import ApiKey, KeyStore

logger = logging.getLogger(__name__)

T = TypeVar("T")
CHALLENGE = {"www-authenticate": 'Bearer realm="chatkeep"'}
CREATE_HINT = "chatkeep keys create --project NAME"
# Every call on an open server (no keys in the database yet).
OPEN_CALLER = Caller(DEFAULT_PROJECT)


def missing_key() -> AuthenticationError:
    """No usable `Authorization: Bearer` header (absent, another scheme, or empty)."""
    return AuthenticationError(
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). API keys for this "
        f"server are created with `{CREATE_HINT}`.",
        headers=CHALLENGE,
    )


def incorrect_key(token: str) -> AuthenticationError:
    """A key that is unknown or revoked (the two are not told apart), shown masked."""
    return AuthenticationError(
        f"Incorrect API key provided: {mask_key(token)}. API keys for this server are created "
        f"with `{CREATE_HINT}`; ask its operator for one.",
        code="invalid_api_key",
        headers=CHALLENGE,
    )


def admin_key_refused() -> AuthenticationError:
    """An admin key sent to a route other than usage and costs. OpenAI answers a key that
    lacks a route's permission with 401 and this opening sentence."""
    return AuthenticationError(
        "You have insufficient permissions for this operation. This is an admin key: it "
        "reads usage and costs (/v1/organization/usage/completions, /v1/organization/costs) "
        f"and nothing else. Use a project's key here (`{CREATE_HINT}`).",
        headers=CHALLENGE,
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when there is none."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


@dataclass(frozen=True, slots=True)
class _Cached:
    key: ApiKey
    caller: Caller
    expires: float


class KeyAccess:
    """An `Authenticator` backed by a `KeyStore`; one per app, holding its own cache.

    `allow_open`: run open while the database holds no key. `insecure`: open is allowed
    only by `--insecure-no-auth` (the start-up warning says so). `clock` measures the
    cache's time, `now` gives the Unix time recorded as `last_used`.
    """

    def __init__(
        self,
        keys: KeyStore,
        *,
        allow_open: bool,
        insecure: bool = False,
        cache_seconds: float = 5.0,
        use_interval: float = 60.0,
        flush_interval: float = 15.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._allow_open = allow_open
        self._insecure = insecure
        self._ttl = cache_seconds
        self._use_interval = use_interval
        self._flush_interval = flush_interval
        self._max_cached = max_cached
        self._clock = clock
        self._now = now
        # Once the database is seen holding a key, this server never runs open again.
        self._closed = not allow_open
        self._open_until = float("-inf")
        self._cache: dict[str, _Cached] = {}
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._used_at: dict[str, float] = {}
        self._refused_at: dict[str, float] = {}
        self._pending_use: dict[str, int] = {}
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    def for_settings(cls, settings: Settings, keys: KeyStore) -> KeyAccess:
        """Open without keys only on a loopback address, or with `insecure_no_auth`."""
        loopback = is_loopback_host(settings.host)
        return cls(
            keys,
            allow_open=loopback or settings.insecure_no_auth,
            insecure=not loopback and settings.insecure_no_auth,
            cache_seconds=settings.auth_cache_seconds,
        )

    @property
    def is_open(self) -> bool:
        """Whether calls without a key are let in now (as last read from the database)."""
        return not self._closed

    async def project_for(self, headers: Mapping[str, str]) -> str:
        return (await self.caller_for(headers)).project

    async def caller_for(self, headers: Mapping[str, str], *, admin_ok: bool = False) -> Caller:
        token = bearer_token(headers.get("authorization"))
        if not self._closed and (self._clock() < self._open_until or await self._still_open()):
            if token is None or not looks_like_key(token):
                return OPEN_CALLER
            found = await self._find(hash_key(token))
            if found is None:  # no such key, and (as of the last look) no keys at all
                return OPEN_CALLER
            self._close()  # a key exists now: it counts, and so do all the others
            return self._caller_of(found, token, admin_ok)
        if token is None:
            raise missing_key()
        return self._caller_of(await self._find(hash_key(token)), token, admin_ok)

    # Open or closed -----------------------------------------------------------------------

    async def _still_open(self) -> bool:
        if await self._shared("", self._keys.has_keys):
            self._close()
            return False
        self._open_until = self._clock() + self._ttl
        return True

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            logger.info(
                "API keys now exist in the database: calls without a valid key are refused "
                "from now on."
            )

    # Keys ---------------------------------------------------------------------------------

    async def project_for_key_hash(self, key_hash: str) -> str:
        """The project of an active key given by its hash (a web UI session holds the hash,
        never the key), or raise `AuthenticationError`: unknown and revoked alike; an admin
        key reads no project's completions."""
        found = await self._find(key_hash)
        if found is None or not found.key.active:
            raise AuthenticationError(
                "The API key of this session is no longer valid: it was revoked. Sign in "
                "with another key.",
                code="invalid_api_key",
            )
        self._close()  # a key exists: the server is closed from now on, as in `project_for`
        return self._caller_of(found, "", admin_ok=False).project

    async def _find(self, key_hash: str) -> _Cached | None:
        cached = self._cache.get(key_hash)
        if cached is not None and self._clock() < cached.expires:
            return cached
        stored = await self._shared(key_hash, lambda: self._keys.find_key(key_hash))
        # The lookup was by this hash already; the compare keeps the final check in
        # constant time whatever the database's index or collation did.
        if stored is None or not hmac.compare_digest(stored.key_hash, key_hash):
            self._cache.pop(key_hash, None)
            return None
        return self._remember(key_hash, stored.key)

    def _remember(self, key_hash: str, key: ApiKey) -> _Cached:
        now = self._clock()
        if len(self._cache) >= self._max_cached:
            self._cache = {h: c for h, c in self._cache.items() if now < c.expires}
            if len(self._cache) >= self._max_cached:
                self._cache.clear()
        # The Caller is made once per lookup, not per request.
        entry = _Cached(key, Caller(key.project, key.id, key.admin), now + self._ttl)
        self._cache[key_hash] = entry
        return entry

    def _caller_of(self, found: _Cached | None, token: str, admin_ok: bool) -> Caller:
        if found is None:
            raise incorrect_key(token)
        key = found.key
        if not key.active:
            if self._due(self._refused_at, key.id):
                logger.info("refused revoked API key %s of project %s", key.id, key.project)
            raise incorrect_key(token)
        if key.admin and not admin_ok:
            raise admin_key_refused()
        if self._due(self._used_at, key.id):
            self._pending_use[key.id] = int(self._now())
        return found.caller

    def _due(self, last: dict[str, float], key_id: str) -> bool:
        """True at most once per `use_interval` for each key id (and records it)."""
        now = self._clock()
        previous = last.get(key_id)
        if previous is not None and now - previous < self._use_interval:
            return False
        last[key_id] = now
        return True

    async def _shared(self, name: str, fetch: Callable[[], Awaitable[T]]) -> T:
        """Await `fetch()`, sharing one call among everyone asking for `name` meanwhile.

        Shielded: a caller that goes away does not cancel the others' answer.
        """
        future = self._inflight.get(name)
        if future is None:
            future = asyncio.ensure_future(fetch())
            self._inflight[name] = future
            future.add_done_callback(functools.partial(self._settled, name))
        result: T = await asyncio.shield(future)
        return result

    def _settled(self, name: str, future: asyncio.Future[Any]) -> None:
        if self._inflight.get(name) is future:
            del self._inflight[name]
        if not future.cancelled():
            future.exception()  # each waiter gets it re-raised; none is left "unretrieved"

    # Lifecycle and last-used times --------------------------------------------------------

    async def start(self) -> None:
        """Read the posture (keys or none) and say it; start recording `last_used`."""
        if await self._keys.has_keys():
            self._closed = True
            logger.info("API keys are required: the database holds keys.")
        elif self._allow_open:
            self._open_until = self._clock() + self._ttl
            logger.warning(self._open_warning())
        else:
            logger.warning(
                "No API keys in the database, and this is not a loopback address: every call "
                f"is refused (401) until a key is created with `{CREATE_HINT}`."
            )
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop())

    def _open_warning(self) -> str:
        fix = (
            f"Create a key with `{CREATE_HINT}` to require keys; this server notices within "
            f"{self._ttl:g} s."
        )
        if self._insecure:
            return (
                "INSECURE: --insecure-no-auth and no API keys in the database: chatkeep runs "
                "OPEN on a non-loopback address; anyone who can reach it can read, change and "
                f"delete every stored completion. {fix}"
            )
        return (
            "No API keys in the database: chatkeep runs OPEN on this loopback address, and "
            f"every caller shares the project '{DEFAULT_PROJECT}'. {fix}"
        )

    async def aclose(self) -> None:
        """Stop the background task and write the `last_used` times still pending."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        await self.flush_use()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            await self.flush_use()

    async def flush_use(self) -> None:
        """Write the pending `last_used` times in one statement; kept for later on failure."""
        if not self._pending_use:
            return
        pending, self._pending_use = self._pending_use, {}
        try:
            await self._keys.record_use(pending)
        except Exception as exc:  # the background task must outlive a database outage
            for key_id, used in pending.items():
                self._pending_use.setdefault(key_id, used)
            logger.warning("could not record when API keys were last used: %s", exc)
