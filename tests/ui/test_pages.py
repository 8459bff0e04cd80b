"""The UI's pages over HTTP, on both stores: what a browser is sent (headers, cookies,
escaped text), who may see what, and the bad inputs each form answers with a clear message.

Completions are created through the official client; the pages are read with a plain
client that keeps cookies, as a browser does.
"""

from __future__ import annotations

import html
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import httpx2
import orjson
import pytest

from chatkeep.errors import InvalidRequestError
from chatkeep.protocol.requests import parse_update_request
from tests.api.keyed import Caller, revoke_key
from tests.ui.conftest import browser_client, csrf_of, sign_in
from tests.ui.conversations import XSS_IMG, XSS_SCRIPT, agent_turn, xss_payloads

Keyed = tuple[str, dict[str, Caller]]


def store(caller: Caller, **request: object) -> str:
    return caller.client.chat.completions.create(store=True, **request).id  # type: ignore[call-overload,no-any-return]


@contextmanager
def signed_in(url: str, caller: Caller) -> Iterator[httpx2.Client]:
    with browser_client(url) as client:
        assert sign_in(client, caller.secret).status_code == 303
        yield client


def test_root_redirects_and_sign_in_is_asked_for(keyed: Keyed) -> None:
    url, _ = keyed
    with browser_client(url) as client:
        assert client.get("/").headers["location"] == "/ui"
        answer = client.get("/ui")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/sign-in"


def test_session_cookie_is_signed_http_only_strict_and_expires(keyed: Keyed) -> None:
    url, callers = keyed
    with browser_client(url) as client:
        answer = sign_in(client, callers["alpha"].secret)
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback
        assert callers["alpha"].secret not in cookie
        # Behind a TLS proxy the cookie is Secure.
        token = csrf_of(client.get("/ui").text)
        out = client.post(
            "/ui/sign-out", data={"csrf": token}, headers={"x-forwarded-proto": "https"}
        )
        assert "Secure" in out.headers["set-cookie"]
    with browser_client(url) as fresh:
        behind = fresh.get("/ui/sign-in", headers={"x-forwarded-proto": "https"})
        assert "Secure" in behind.headers["set-cookie"]


def test_a_tampered_cookie_counts_as_none(keyed: Keyed) -> None:
    url, callers = keyed
    with signed_in(url, callers["alpha"]) as client:
        value = client.cookies["chatkeep_ui"]
        payload, _, signature = value.rpartition(".")
        client.cookies.clear()
        client.cookies.set("chatkeep_ui", f"{payload}.{signature[::-1]}")
        assert client.get("/ui").headers["location"] == "/ui/sign-in"


def test_every_page_carries_the_security_headers(keyed: Keyed) -> None:
    url, callers = keyed
    completion_id = store(callers["alpha"], **agent_turn())
    with signed_in(url, callers["alpha"]) as client:
        for path in ["/ui", f"/ui/completions/{completion_id}", "/ui/usage", "/ui/nope"]:
            answer = client.get(path)
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
            assert "frame-ancestors 'none'" in policy
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["cache-control"] == "no-store"
            assert "<script>" not in answer.text  # scripts only as files: `<script src=`


def test_list_and_detail_show_the_projects_completions(keyed: Keyed) -> None:
    url, callers = keyed
    completion_id = store(callers["alpha"], **agent_turn())
    with signed_in(url, callers["alpha"]) as client:
        listing = client.get("/ui").text
        assert completion_id in listing and "So, umbrella or not?" in listing
        assert "team=agents" in listing
        detail = client.get(f"/ui/completions/{completion_id}").text
        assert "get_weather" in detail and "&#34;city&#34;: &#34;Lisbon&#34;" in detail
        assert f"/v1/chat/completions/{completion_id}" in detail  # its JSON twin


def test_stored_text_is_escaped_everywhere(keyed: Keyed) -> None:
    url, callers = keyed
    completion_id = store(callers["alpha"], **xss_payloads())
    with signed_in(url, callers["alpha"]) as client:
        for path in ["/ui", f"/ui/completions/{completion_id}"]:
            page = client.get(path).text
            assert XSS_SCRIPT not in page and XSS_IMG not in page
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
            assert "&lt;img src=x onerror=" in page


def test_another_projects_completion_is_a_404_page(keyed: Keyed) -> None:
    url, callers = keyed
    theirs = store(callers["beta"], model="m", messages=[{"role": "user", "content": "beta's"}])
    with signed_in(url, callers["alpha"]) as client:
        for path in [f"/ui/completions/{theirs}", f"/ui/completions/{theirs}/delete"]:
            answer = client.get(path)
            assert answer.status_code == 404 and "beta&#39;s" not in answer.text
            assert "No stored completion of this project has this id" in answer.text
        token = csrf_of(client.get("/ui").text)
        for action in ["delete", "metadata"]:
            answer = client.post(
                f"/ui/completions/{theirs}/{action}", data={"csrf": token, "mk": "a", "mv": "b"}
            )
            assert answer.status_code == 404
        assert theirs not in client.get("/ui").text
    assert callers["beta"].client.chat.completions.retrieve(theirs).metadata in ({}, None)


def test_a_post_without_the_csrf_token_is_refused(keyed: Keyed) -> None:
    url, callers = keyed
    completion_id = store(callers["alpha"], model="m", messages=[{"role": "user", "content": "x"}])
    with signed_in(url, callers["alpha"]) as client:
        for data in [{}, {"csrf": "forged"}]:
            answer = client.post(f"/ui/completions/{completion_id}/delete", data=data)
            assert answer.status_code == 403 and "Form refused" in answer.text
    # Another site's form: the browser sends no cookie (SameSite=Strict), nor the token.
    with browser_client(url) as stranger:
        answer = stranger.post(f"/ui/completions/{completion_id}/delete", data={"csrf": "x"})
        assert answer.status_code == 403
    assert callers["alpha"].client.chat.completions.retrieve(completion_id).id == completion_id


def test_a_revoked_keys_session_ends_with_a_clear_page(keyed: Keyed, database_url: str) -> None:
    url, callers = keyed
    with signed_in(url, callers["alpha"]) as client:
        assert client.get("/ui").status_code == 200
        revoke_key(database_url, callers["alpha"].key_id)
        answer = client.get("/ui")
        assert answer.status_code == 401 and "key was revoked" in answer.text
        assert client.get("/ui").headers["location"] == "/ui/sign-in"  # signed out now
        refused = sign_in(client, callers["alpha"].secret)
        assert refused.status_code == 401 and "not accepted" in refused.text


def test_the_key_never_reaches_a_page_or_a_log(
    keyed: Keyed, caplog: pytest.LogCaptureFixture
) -> None:
    url, callers = keyed
    secret = callers["alpha"].secret
    caplog.set_level(logging.DEBUG)
    with browser_client(url) as client:
        wrong = sign_in(client, secret[:-4] + "zzzz")
        assert wrong.status_code == 401 and secret[:-4] not in wrong.text
        assert sign_in(client, secret).status_code == 303
        for path in ["/ui", "/ui/usage", "/ui/sign-in"]:
            answer = client.get(path, follow_redirects=True)
            assert secret not in answer.text and secret not in str(answer.url)
    assert secret not in caplog.text and secret[:-4] not in caplog.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "Invalid 'limit': integer below minimum value"),
        ("limit=1000", "Invalid 'limit': integer above maximum value"),
        ("limit=ten", "Invalid type for 'limit': expected an integer"),
        ("after=nope", "Invalid 'after': expected the id of a chat completion"),
        ("from=yesterday", "Invalid 'from': expected a UTC date and time"),
        ("until=2026-13-01", "Invalid 'until': expected a UTC date and time"),
        ("mk=&mv=orphan", "Metadata filter: the value 'orphan' has no key."),
    ],
)
def test_bad_filters_show_the_apis_message(keyed: Keyed, query: str, message: str) -> None:
    url, callers = keyed
    with signed_in(url, callers["alpha"]) as client:
        answer = client.get(f"/ui?{query}")
        assert answer.status_code == 400
        assert message in answer.text.replace("&#39;", "'")
        assert 'name="model"' in answer.text  # the form is still there to fix it


def _api_message(metadata: object) -> str:
    try:
        parse_update_request(orjson.dumps({"metadata": metadata}))
    except InvalidRequestError as error:
        return error.message
    raise AssertionError("the API accepted it")


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("k" * 65, "v")], _api_message({"k" * 65: "v"})),
        ([("k", "v" * 513)], _api_message({"k": "v" * 513})),
        ([(f"k{n}", "v") for n in range(17)], _api_message({f"k{n}": "v" for n in range(17)})),
        ([("", "orphan")], "The value 'orphan' has no key."),
        ([("same", "1"), ("same", "2")], "The key 'same' is given twice."),
    ],
    ids=["key too long", "value too long", "17 pairs", "value without key", "key twice"],
)
def test_rejected_metadata_edits_show_the_apis_message(
    keyed: Keyed, pairs: list[tuple[str, str]], expected: str
) -> None:
    url, callers = keyed
    completion_id = store(
        callers["alpha"],
        model="m",
        messages=[{"role": "user", "content": "x"}],
        metadata={"a": "1"},
    )
    with signed_in(url, callers["alpha"]) as client:
        token = csrf_of(client.get(f"/ui/completions/{completion_id}").text)
        form = [("csrf", token)] + [
            (name, v) for k, v in pairs for name, v in (("mk", k), ("mv", v))
        ]
        answer = client.post(
            f"/ui/completions/{completion_id}/metadata",
            content=urlencode(form),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 400
        shown = re.sub(r"&#39;", "'", answer.text).replace("&#34;", '"')
        assert expected in shown
    assert callers["alpha"].client.chat.completions.retrieve(completion_id).metadata == {"a": "1"}


def _copied(page: str, name: str) -> str:
    found = re.search(rf'<pre class="json" id="copy-{name}">(.*?)</pre>', page, re.DOTALL)
    assert found is not None, name
    return html.unescape(found.group(1))


def test_copy_as_json_curl_and_python_replay_the_request(
    keyed: Keyed, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, callers = keyed
    alpha = callers["alpha"]
    request = agent_turn()
    completion_id = store(alpha, **request)
    with signed_in(url, alpha) as client:
        page = client.get(f"/ui/completions/{completion_id}").text
    assert orjson.loads(_copied(page, "json")) == alpha.client.chat.completions.retrieve(
        completion_id
    ).model_dump(mode="json", exclude_unset=True) | {"metadata": request["metadata"]}
    curl, python = _copied(page, "curl"), _copied(page, "python")
    assert alpha.secret not in curl + python
    # The curl command, run by a shell with the key in the environment.
    environment = {"PATH": os.environ["PATH"], "OPENAI_API_KEY": alpha.secret}
    ran = subprocess.run(
        ["sh", "-c", curl + " --silent --fail"], env=environment, capture_output=True, timeout=30
    )
    assert ran.returncode == 0, ran.stderr
    by_curl = orjson.loads(ran.stdout)
    # The Python, run as written with the key in the environment.
    monkeypatch.setenv("OPENAI_API_KEY", alpha.secret)
    exec(compile(python, "copied.py", "exec"), {})  # the page's own snippet, as copied
    replays = [c for c in alpha.client.chat.completions.list() if c.id != completion_id]
    assert by_curl["id"] in {c.id for c in replays} and len(replays) == 2
    for replay in replays:
        assert replay.metadata == request["metadata"]
        messages = alpha.client.chat.completions.messages.list(replay.id).data
        assert [m.content for m in messages] == [m.get("content") for m in request["messages"]]


def test_the_search_box_filters_by_text(keyed: Keyed) -> None:
    url, callers = keyed
    alpha = callers["alpha"]
    found = store(alpha, model="m", messages=[{"role": "user", "content": "a connection reset"}])
    store(alpha, model="m", messages=[{"role": "user", "content": "nothing to see"}])
    with signed_in(url, alpha) as client:
        page = client.get("/ui?q=reset").text
        assert 'name="q"' in page and found in page and "nothing to see" not in page
        assert "search=reset" in page  # the JSON twin
        bad = client.get('/ui?q="unclosed')
        assert bad.status_code == 400 and "search" in bad.text


def test_the_usage_page_shows_the_projects_answered_completions(keyed: Keyed) -> None:
    url, callers = keyed
    alpha, beta = callers["alpha"], callers["beta"]
    for model in ("m-one", "m-one", "m-two"):
        alpha.client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
    beta.client.chat.completions.create(
        model="m-beta", messages=[{"role": "user", "content": "hi"}]
    )
    with signed_in(url, alpha) as client:
        page = client.get("/ui/usage").text
    # Stored or not, every answered completion counts; another project's do not.
    assert page.count('<svg class="chart"') == 2
    assert '<td><code>m-one</code></td><td class="num">2</td>' in page
    assert '<td><code>m-two</code></td><td class="num">1</td>' in page
    assert "m-beta" not in page


def test_the_model_filter_suggests_the_models_seen_in_the_project(keyed: Keyed) -> None:
    url, callers = keyed
    alpha, beta = callers["alpha"], callers["beta"]
    store(alpha, model="seen-model", messages=[{"role": "user", "content": "hi"}])
    store(beta, model="betas-model", messages=[{"role": "user", "content": "hi"}])
    with signed_in(url, alpha) as client:
        page = client.get("/ui").text
    assert '<option value="seen-model">' in page and "betas-model" not in page
