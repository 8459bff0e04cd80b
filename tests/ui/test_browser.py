"""The web UI in a real browser (Debian's Chromium, driven by Playwright): signing in and
out, filtering and paging, reading a conversation, editing and deleting, and the attacks a
page must withstand. List and detail run on both stores; the rest on SQLite.

Every page is also checked for console errors, which is where a Content-Security-Policy
violation (an inline script or style that slipped in) shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatkeep.config import Settings
from chatkeep.http.app import create_app
from tests.api.keyed import Caller, create_key, revoke_key, sdk
from tests.conftest import ThreadedServer
from tests.ui.conftest import aside, keyed_aside
from tests.ui.conversations import (
    REMOTE_IMAGE,
    XSS_SCRIPT,
    agent_turn,
    image_question,
    translation_choices,
    xss_payloads,
)

Keyed = tuple[str, dict[str, Caller]]
ANSWERED_STATUS = "Failed to load resource: the server responded with a status of"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'chatkeep.db'}"


@pytest.fixture
def keyed_sqlite(sqlite_url: str) -> Iterator[Keyed]:
    with keyed_aside(sqlite_url) as served:
        yield served


@pytest.fixture
def console_errors(page: Any) -> Iterator[list[str]]:
    """Console errors of the test's page; none may be left at its end."""
    errors: list[str] = []

    def noted(message: Any) -> None:
        # A page answered with 401 or 404 on purpose is logged too: not an error here.
        if message.type == "error" and not message.text.startswith(ANSWERED_STATUS):
            errors.append(message.text)

    page.on("console", noted)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield errors
    assert errors == []


def store(caller: Caller, **request: Any) -> str:
    return caller.client.chat.completions.create(store=True, **request).id  # type: ignore[no-any-return]


def follow(page: Any, target: Any) -> None:
    """Click what leads to another page, and wait until that page has loaded."""
    with page.expect_navigation():
        target.click()


def sign_in(page: Any, url: str, secret: str) -> None:
    page.goto(f"{url}/ui")
    assert page.url.endswith("/ui/sign-in")
    page.get_by_label("API key").fill(secret)
    follow(page, page.get_by_role("button", name="Sign in"))


def test_sign_in_and_sign_out(page: Any, keyed_sqlite: Keyed, console_errors: list[str]) -> None:
    url, callers = keyed_sqlite
    store(callers["alpha"], model="m", messages=[{"role": "user", "content": "alpha's note"}])
    sign_in(page, url, callers["alpha"].secret)
    assert page.url == f"{url}/ui"
    assert page.locator(".project").inner_text() == "Project alpha"
    assert page.get_by_text("alpha's note").count() == 2  # the question, and its echo
    follow(page, page.get_by_role("button", name="Sign out"))
    assert page.url.endswith("/ui/sign-in?signed_out=1")
    assert page.get_by_role("status").inner_text() == "You are signed out."
    page.goto(f"{url}/ui")
    assert page.url.endswith("/ui/sign-in")


def test_a_wrong_and_a_revoked_key(
    page: Any, keyed_sqlite: Keyed, sqlite_url: str, console_errors: list[str]
) -> None:
    url, callers = keyed_sqlite
    sign_in(page, url, "sk-ck-" + "x" * 40)
    assert "not accepted" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("API key").input_value() == ""  # not echoed back
    key_id, secret = aside(create_key, sqlite_url, "gamma")
    aside(revoke_key, sqlite_url, key_id)
    sign_in(page, url, secret)
    assert "not accepted" in page.get_by_role("alert").inner_text()
    # A key revoked while signed in: the next page says so, once, and signs out.
    sign_in(page, url, callers["beta"].secret)
    assert page.url == f"{url}/ui"
    aside(revoke_key, sqlite_url, callers["beta"].key_id)
    page.reload()
    assert page.get_by_role("heading", level=1).inner_text() == "This session's key was revoked"
    follow(page, page.get_by_role("link", name="Sign in with another key"))
    assert page.url.endswith("/ui/sign-in")


def test_filters_and_pages_live_in_the_url(
    page: Any, keyed: Keyed, console_errors: list[str]
) -> None:
    url, callers = keyed
    alpha = callers["alpha"]
    for n in range(5):
        store(
            alpha,
            model="m1",
            messages=[{"role": "user", "content": f"kept {n}"}],
            metadata={"team": "a"},
        )
    store(
        alpha,
        model="m1",
        messages=[{"role": "user", "content": "other team"}],
        metadata={"team": "b"},
    )
    store(
        alpha,
        model="m2",
        messages=[{"role": "user", "content": "other model"}],
        metadata={"team": "a"},
    )
    sign_in(page, url, alpha.secret)
    page.goto(f"{url}/ui?limit=2")
    page.get_by_label("Model").fill("m1")
    page.get_by_label("New metadata key").fill("team")
    page.get_by_label("New metadata value").fill("a")
    follow(page, page.get_by_role("button", name="Filter"))
    first = page.url
    assert "model=m1" in first and "mk=team&mv=a" in first and "limit=2" in first
    questions = page.locator(".completions .q")
    assert questions.all_inner_texts() == ["USER kept 4", "USER kept 3"]
    follow(page, page.get_by_role("link", name="Older »"))
    assert "after=chatcmpl-" in page.url and "mk=team&mv=a" in page.url
    assert questions.all_inner_texts() == ["USER kept 2", "USER kept 1"]
    follow(page, page.get_by_role("link", name="Older »"))
    assert questions.all_inner_texts() == ["USER kept 0"]
    assert page.get_by_role("link", name="Older »").count() == 0
    page.go_back()
    page.go_back()
    assert page.url == first
    assert questions.all_inner_texts() == ["USER kept 4", "USER kept 3"]
    assert page.get_by_label("Model").input_value() == "m1"  # the form shows the filters
    follow(page, page.get_by_role("link", name="Remove the filter team=a"))
    assert "mk=" not in page.url and "model=m1" in page.url
    twin = page.locator("a.twin").get_attribute("href")
    assert twin.startswith("/v1/chat/completions?order=desc&limit=2&model=m1")


def test_a_conversation_with_tool_calls_and_images(
    page: Any, keyed: Keyed, console_errors: list[str]
) -> None:
    url, callers = keyed
    alpha = callers["alpha"]
    agent = store(alpha, **agent_turn())
    image = store(alpha, **image_question())
    choices = store(alpha, **translation_choices())
    sign_in(page, url, alpha.secret)
    page.goto(f"{url}/ui/completions/{agent}")
    calls = page.locator(".tool-call")
    assert calls.count() == 2
    assert "get_weather" in calls.first.inner_text()
    assert '"city": "Lisbon",\n  "unit": "c"' in calls.first.locator("pre").inner_text()
    assert page.get_by_text("result of call_oslo").count() == 1
    assert page.locator(".turn.role-tool").count() == 2
    page.goto(f"{url}/ui/completions/{image}")
    shown = page.locator(".image img")
    assert shown.count() == 1
    assert shown.evaluate("img => img.complete && img.naturalWidth") == 24
    link = page.get_by_role("link", name=REMOTE_IMAGE)
    assert link.get_attribute("rel") == "noopener noreferrer nofollow"
    assert page.locator(f'img[src="{REMOTE_IMAGE}"]').count() == 0  # never loaded
    page.goto(f"{url}/ui/completions/{choices}")
    assert page.get_by_role("heading", name="Answers (3 choices)").count() == 1
    folded = page.locator("details.logprobs")
    assert folded.count() == 3 and folded.first.get_attribute("open") is None
    folded.first.locator("summary").click()
    assert folded.first.locator("tbody tr").count() > 0
    assert page.locator(".facts").first.get_by_text("0.7").count() == 1  # temperature


def test_editing_metadata_and_a_rejected_edit(
    page: Any, keyed_sqlite: Keyed, console_errors: list[str]
) -> None:
    url, callers = keyed_sqlite
    alpha = callers["alpha"]
    completion_id = store(
        alpha,
        model="m",
        messages=[{"role": "user", "content": "x"}],
        metadata={"team": "a", "drop": "me"},
    )
    sign_in(page, url, alpha.secret)
    page.goto(f"{url}/ui/completions/{completion_id}")
    page.get_by_label("Value 2").fill("b")  # pairs are sorted: drop, team
    page.locator('input[name="rm"][value="0"]').check()
    page.get_by_label("Key 3").fill("new")
    page.get_by_label("Value 3").fill("pair")
    follow(page, page.get_by_role("button", name="Save metadata"))
    assert page.get_by_role("status").inner_text() == "Metadata saved."
    retrieved = alpha.client.chat.completions.retrieve(completion_id)
    assert retrieved.metadata == {"team": "b", "new": "pair"}
    page.get_by_label("Key 3").fill("k" * 65)
    follow(page, page.get_by_role("button", name="Save metadata"))
    alert = page.get_by_role("alert").inner_text()
    assert "Invalid 'metadata': key too long. Expected a key with maximum length 64" in alert
    assert page.get_by_label("Key 3").input_value() == "k" * 65  # kept, to be fixed
    assert alpha.client.chat.completions.retrieve(completion_id).metadata == retrieved.metadata


def test_deleting_asks_first(page: Any, keyed_sqlite: Keyed, console_errors: list[str]) -> None:
    url, callers = keyed_sqlite
    alpha = callers["alpha"]
    completion_id = store(alpha, model="m", messages=[{"role": "user", "content": "bye"}])
    sign_in(page, url, alpha.secret)
    page.goto(f"{url}/ui/completions/{completion_id}")
    follow(page, page.get_by_role("link", name="Delete this completion…"))
    assert page.get_by_role("heading", level=1).inner_text() == "Delete this completion?"
    follow(page, page.get_by_role("link", name="Cancel"))
    assert page.url.endswith(f"/ui/completions/{completion_id}")
    follow(page, page.get_by_role("link", name="Delete this completion…"))
    follow(page, page.get_by_role("button", name="Delete"))
    assert page.get_by_role("status").inner_text() == f"Deleted {completion_id}."
    assert alpha.client.chat.completions.list().data == []


def test_stored_payloads_show_as_text(
    page: Any, keyed_sqlite: Keyed, console_errors: list[str]
) -> None:
    url, callers = keyed_sqlite
    completion_id = store(callers["alpha"], **xss_payloads())
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, url, callers["alpha"].secret)
    for path in ["/ui", f"/ui/completions/{completion_id}"]:
        page.goto(f"{url}{path}")
        assert page.get_by_text(XSS_SCRIPT).count() >= 1
        assert page.locator("img[src=x]").count() == 0
        assert page.title() != "pwned"
    assert dialogs == []


def test_a_forged_post_is_refused(page: Any, keyed_sqlite: Keyed) -> None:
    url, callers = keyed_sqlite
    alpha = callers["alpha"]
    completion_id = store(alpha, model="m", messages=[{"role": "user", "content": "keep me"}])
    sign_in(page, url, alpha.secret)
    # The session's cookie goes along; the page's token does not.
    for form in [{}, {"csrf": "guessed"}]:
        answer = page.request.post(f"{url}/ui/completions/{completion_id}/delete", form=form)
        assert answer.status == 403
    assert alpha.client.chat.completions.retrieve(completion_id).id == completion_id


def test_another_projects_id_is_a_404_page(
    page: Any, keyed: Keyed, console_errors: list[str]
) -> None:
    url, callers = keyed
    theirs = store(callers["beta"], model="m", messages=[{"role": "user", "content": "secret"}])
    sign_in(page, url, callers["alpha"].secret)
    answer = page.goto(f"{url}/ui/completions/{theirs}")
    assert answer.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "Not found"
    assert page.get_by_text("secret").count() == 0


def test_open_loopback_mode_needs_no_sign_in(
    page: Any, sqlite_url: str, console_errors: list[str]
) -> None:
    with ThreadedServer(create_app(Settings(database_url=sqlite_url))) as url:
        with sdk(url, "no key") as client:
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "open door"}], store=True
            )
        page.goto(f"{url}/")
        assert page.url == f"{url}/ui"
        assert page.locator(".badge").inner_text() == "Open server"
        assert page.locator(".project").inner_text() == "Project default"
        assert page.get_by_role("button", name="Sign out").count() == 0
        follow(page, page.get_by_role("link", name=re.compile("open door")).first)
        assert page.get_by_role("heading", name="Conversation").count() == 1
        copy = page.locator("button[data-copy]")
        assert copy.count() == 3
        page.get_by_text("As JSON").click()  # open its section: ui.js has revealed the button
        assert copy.first.is_visible()
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
        copy.first.click()
        page.locator("button[data-copy]", has_text="Copied").wait_for()  # once it resolved
        copied = page.evaluate("navigator.clipboard.readText()")
        assert '"object": "chat.completion"' in copied and "open door" in copied
        page.goto(f"{url}/ui/sign-in")
        assert page.url == f"{url}/ui"  # nothing to sign in to
