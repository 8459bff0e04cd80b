"""Authentication as OpenAI answers it: 401s in its words and envelope, never retried, for
missing, malformed, wrong and revoked keys; and the open posture of a server without keys.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx2
import openai
import pytest

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.service.keys import KEY_PREFIX, new_secret
from tests.api.keyed import Caller, create_key, keyed_server, revoke_key, sdk
from tests.conftest import ThreadedServer

MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). API keys for this server "
    "are created with `chatkeep keys create --project NAME`."
)
INCORRECT = re.compile(r"^Incorrect API key provided: (\S+)\. API keys for this server are")
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def alpha(database_url: str) -> Iterator[tuple[str, Caller]]:
    # No cache: a revocation shows on the very next request.
    with keyed_server(database_url, ("alpha",), auth_cache_seconds=0) as (url, callers):
        yield url, callers["alpha"]


def assert_401(response: httpx2.Response, message: str | re.Pattern[str], code: str | None) -> str:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, code)
    if isinstance(message, str):
        assert error["message"] == message
    else:
        assert message.match(error["message"]), error["message"]
    text: str = error["message"]
    return text


def test_a_request_without_a_key_gets_openais_401(alpha: tuple[str, Caller]) -> None:
    url, _ = alpha
    response = httpx2.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": HI})
    assert_401(response, MISSING, None)


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNzd29yZA==", "Bearer", "Bearer:{key}", "Token {key}", "{key}", ""],
)
def test_a_malformed_authorization_header_is_a_missing_key(
    alpha: tuple[str, Caller], authorization: str
) -> None:
    url, caller = alpha
    header = authorization.format(key=caller.secret)
    response = httpx2.get(f"{url}/v1/chat/completions", headers={"authorization": header})
    assert_401(response, MISSING, None)
    assert caller.secret not in response.text


def test_the_scheme_is_case_insensitive(alpha: tuple[str, Caller]) -> None:
    url, caller = alpha
    response = httpx2.get(
        f"{url}/v1/chat/completions", headers={"authorization": f"bearer {caller.secret}"}
    )
    assert response.status_code == 200 and response.json()["data"] == []


@pytest.mark.parametrize("kind", ["random", "one character off", "another scheme's key"])
def test_a_wrong_key_is_refused_and_shown_masked(alpha: tuple[str, Caller], kind: str) -> None:
    url, caller = alpha
    wrong = {
        "random": new_secret(),
        "one character off": caller.secret[:-1] + ("a" if caller.secret[-1] != "a" else "b"),
        "another scheme's key": "sk-proj-" + "x" * 40 + "WXYZ",
    }[kind]
    with sdk(url, wrong) as client, pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="m", messages=HI, store=True)  # type: ignore[arg-type]
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    shown = assert_401(refused.value.response, INCORRECT, "invalid_api_key")
    masked = INCORRECT.match(shown).group(1)  # type: ignore[union-attr]
    assert masked == f"{wrong[:6]}...{wrong[-4:]}"
    assert wrong not in refused.value.response.text
    assert caller.secret not in refused.value.response.text


def test_a_short_wrong_key_is_not_echoed_at_all(alpha: tuple[str, Caller]) -> None:
    url, _ = alpha
    with sdk(url, "hunter2") as client, pytest.raises(openai.AuthenticationError) as refused:
        client.models.list()
    assert refused.value.body["message"] == (  # type: ignore[index]
        "Incorrect API key provided: ***. API keys for this server are created with "
        "`chatkeep keys create --project NAME`; ask its operator for one."
    )
    assert "hunter2" not in refused.value.response.text


def test_a_revoked_key_is_refused_like_a_wrong_one(
    alpha: tuple[str, Caller], database_url: str
) -> None:
    url, caller = alpha
    kept = caller.client.chat.completions.create(model="m", messages=HI, store=True)  # type: ignore[arg-type]
    revoke_key(database_url, caller.key_id)
    with pytest.raises(openai.AuthenticationError) as refused:
        caller.client.chat.completions.retrieve(kept.id)
    assert refused.value.code == "invalid_api_key"
    assert_401(refused.value.response, INCORRECT, "invalid_api_key")
    # A new key of the same project sees the project's completions again.
    _, secret = create_key(database_url, "alpha")
    with sdk(url, secret) as client:
        assert client.chat.completions.retrieve(kept.id).id == kept.id


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/chat/completions"),
        ("GET", "/v1/chat/completions/chatcmpl-x"),
        ("POST", "/v1/chat/completions/chatcmpl-x"),
        ("DELETE", "/v1/chat/completions/chatcmpl-x"),
        ("GET", "/v1/chat/completions/chatcmpl-x/messages"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/gpt-4o"),
    ],
)
def test_every_api_route_needs_a_key(alpha: tuple[str, Caller], method: str, path: str) -> None:
    url, _ = alpha
    # Checked before the body is read: even a malformed body gets the 401.
    response = httpx2.request(method, f"{url}{path}", content=b"{not json")
    assert_401(response, MISSING, None)


def test_health_needs_no_key(alpha: tuple[str, Caller]) -> None:
    url, _ = alpha
    assert httpx2.get(f"{url}/health").json() == {"status": "ok"}


def test_openai_project_and_organization_headers_cannot_widen_access(database_url: str) -> None:
    with keyed_server(database_url) as (url, callers):
        alpha, beta = callers["alpha"], callers["beta"]
        theirs = beta.client.chat.completions.create(model="m", messages=HI, store=True)  # type: ignore[arg-type]
        headers = {"OpenAI-Project": "beta", "OpenAI-Organization": "beta"}
        with sdk(url, alpha.secret, project="beta", organization="beta") as sneaky:
            with pytest.raises(openai.NotFoundError):
                sneaky.chat.completions.retrieve(theirs.id)
            with pytest.raises(openai.NotFoundError):
                sneaky.chat.completions.delete(theirs.id, extra_headers=headers)
            assert [c.id for c in sneaky.chat.completions.list(extra_headers=headers)] == []
            made = sneaky.chat.completions.create(model="m", messages=HI, store=True)  # type: ignore[arg-type]
        # What it created is alpha's, whatever the headers said.
        assert [c.id for c in alpha.client.chat.completions.list()] == [made.id]
        assert [c.id for c in beta.client.chat.completions.list()] == [theirs.id]
        with sdk(url, "sk-x", project="alpha") as nobody, pytest.raises(openai.AuthenticationError):
            nobody.chat.completions.list()


# The open posture: no keys in the database.


def _serve(database_url: str, **settings: object) -> ThreadedServer:
    return ThreadedServer(create_app(Settings(database_url=database_url, **settings)))  # type: ignore[arg-type]


def test_without_keys_a_loopback_server_is_open_in_one_default_project(
    database_url: str,
) -> None:
    with _serve(database_url) as url, sdk(url, "anything") as one, sdk(url, "else") as two:
        made = one.chat.completions.create(model="m", messages=HI, store=True)  # type: ignore[arg-type]
        assert two.chat.completions.retrieve(made.id).id == made.id
        assert httpx2.get(f"{url}/v1/chat/completions").json()["data"][0]["id"] == made.id


def test_the_first_key_closes_an_open_server(database_url: str) -> None:
    with _serve(database_url, auth_cache_seconds=0) as url, sdk(url, "unused") as anyone:
        before = anyone.chat.completions.create(model="m", messages=HI, store=True)  # type: ignore[arg-type]
        _, secret = create_key(database_url, "alpha")
        with pytest.raises(openai.AuthenticationError):
            anyone.chat.completions.list()
        assert_401(httpx2.get(f"{url}/v1/models"), MISSING, None)
        with sdk(url, secret) as alpha:
            # alpha's project is not the default one that the open server stored into.
            assert [c.id for c in alpha.chat.completions.list()] == []
            with pytest.raises(openai.NotFoundError):
                alpha.chat.completions.retrieve(before.id)
        # Those completions belong to the project `default`; a key for it reaches them.
        _, default_secret = create_key(database_url, "default")
        with sdk(url, default_secret) as default:
            assert [c.id for c in default.chat.completions.list()] == [before.id]


def test_a_new_key_counts_at_once_even_while_the_open_state_is_cached(
    database_url: str,
) -> None:
    with _serve(database_url, auth_cache_seconds=300) as url, sdk(url, "unused") as anyone:
        anyone.chat.completions.create(model="m", messages=HI, store=True)  # type: ignore[arg-type]
        _, secret = create_key(database_url, "alpha")
        with sdk(url, secret) as alpha:
            made = alpha.chat.completions.create(model="m", messages=HI, store=True)  # type: ignore[arg-type]
            assert [c.id for c in alpha.chat.completions.list()] == [made.id]
        # The key's use showed that keys exist: the door is shut from then on.
        with pytest.raises(openai.AuthenticationError):
            anyone.chat.completions.list()


def test_without_keys_a_server_for_other_hosts_refuses_every_call(database_url: str) -> None:
    # (`chatkeep serve` refuses to start like this; an app built anyway fails closed.)
    with _serve(database_url, host="0.0.0.0") as url:
        assert_401(httpx2.get(f"{url}/v1/chat/completions"), MISSING, None)
        with sdk(url, new_secret()) as client, pytest.raises(openai.AuthenticationError):
            client.models.list()
        assert httpx2.get(f"{url}/health").status_code == 200


def test_insecure_no_auth_opens_a_server_for_other_hosts_and_says_so(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatkeep")
    with _serve(database_url, host="0.0.0.0", insecure_no_auth=True) as url:
        assert httpx2.get(f"{url}/v1/chat/completions").status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(w.startswith("INSECURE: --insecure-no-auth") for w in warnings), warnings


def test_keys_have_our_prefix_and_enough_randomness(database_url: str) -> None:
    secrets = {create_key(database_url, "alpha")[1] for _ in range(3)}
    assert len(secrets) == 3
    for secret in secrets:
        assert re.fullmatch(f"{KEY_PREFIX}[0-9A-Za-z]{{40}}", secret)
