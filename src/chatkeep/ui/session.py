"""The web UI's session cookie: whose key signed in (its hash, never the key), and the CSRF
token every form of the UI sends back.

One cookie, signed and timestamped with itsdangerous: `{"k": key hash or null, "t": token}`.
It is `HttpOnly`, `SameSite=Strict`, `Secure` when the page came over HTTPS (directly, or
through a proxy that says so in `X-Forwarded-Proto`), and expires after
`ui_session_hours`; a cookie past that age or with a bad signature counts as absent.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from chatkeep.config import Settings

COOKIE = "chatkeep_ui"
_SALT = "chatkeep.ui.session"
_KEY_HASH_LENGTH = 64  # hex SHA-256
_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    """A browser's session: `key_hash` None until a key signs in (or on an open server)."""

    key_hash: str | None
    csrf: str

    def accepts(self, token: str | None) -> bool:
        """Whether a form's CSRF token is this session's (compared in constant time)."""
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


def new_session(key_hash: str | None = None) -> Session:
    return Session(key_hash=key_hash, csrf=secrets.token_urlsafe(_TOKEN_BYTES))


def session_secret(settings: Settings) -> str:
    """The configured secret, or a random one for this app (sign-ins end at a restart)."""
    if settings.ui_session_secret is not None:
        return settings.ui_session_secret.get_secret_value()
    return secrets.token_urlsafe(32)


def with_shared_session_secret(settings: Settings) -> Settings:
    """Settings whose UI session secret is set: drawn once here when unset, so that the
    workers of one `chatkeep serve --workers N` (forked after this) accept each other's
    session cookies."""
    if settings.ui_session_secret is not None:
        return settings
    return settings.model_copy(update={"ui_session_secret": SecretStr(secrets.token_urlsafe(32))})


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip().lower() == "https"


class SessionCookies:
    """Reads and writes the session cookie for one app."""

    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self._max_age = max_age_seconds

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self._max_age)
        except BadSignature:  # SignatureExpired included
            return None
        if not isinstance(data, dict):
            return None
        key_hash, csrf = data.get("k"), data.get("t")
        if not isinstance(csrf, str) or not csrf:
            return None
        if key_hash is not None and not (
            isinstance(key_hash, str) and len(key_hash) == _KEY_HASH_LENGTH
        ):
            return None
        return Session(key_hash=key_hash, csrf=csrf)

    def write(self, response: Response, session: Session, *, secure: bool) -> None:
        value = self._serializer.dumps({"k": session.key_hash, "t": session.csrf})
        response.set_cookie(
            COOKIE,
            value,
            max_age=self._max_age,
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure,
        )
