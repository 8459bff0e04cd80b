"""Fixtures of the web UI's tests: a keyed server on the test's store, plain HTTP clients
that sign in as a browser would, and one Chromium for the browser tests.

The browser tests (test_browser.py) drive Debian's Chromium (`/usr/bin/chromium`) through
Playwright. Where either is missing they are skipped, saying why, unless
`CHATKEEP_REQUIRE_BROWSER=1` (set by `.ci/run`) makes that a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest

from tests.api.keyed import Caller, keyed_server

T = TypeVar("T")
CHROMIUM = Path(os.environ.get("CHATKEEP_TEST_CHROMIUM", "/usr/bin/chromium"))
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    found = CSRF_FIELD.search(page)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def browser_client(base_url: str) -> httpx2.Client:
    """A client that keeps cookies like a browser and sends no API key."""
    return httpx2.Client(base_url=base_url, follow_redirects=False)


def sign_in(client: httpx2.Client, secret: str) -> httpx2.Response:
    """Open the sign-in page, then post the key with the page's token."""
    token = csrf_of(client.get("/ui/sign-in").text)
    return client.post("/ui/sign-in", data={"csrf": token, "key": secret})


def aside(function: Callable[..., T], *args: Any) -> T:
    """Call `function` in another thread: Playwright's synchronous API keeps an event loop
    running on the test's thread, where the CLI's own `asyncio.run` cannot start one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


@contextmanager
def keyed_aside(database_url: str) -> Iterator[tuple[str, dict[str, Caller]]]:
    """`keyed_server` (alpha and beta with a key each; a revoked key stops at its next
    request), entered and left in another thread."""
    served = keyed_server(database_url, auth_cache_seconds=0)
    yield aside(served.__enter__)
    aside(served.__exit__, None, None, None)


@pytest.fixture
def keyed(database_url: str) -> Iterator[tuple[str, dict[str, Caller]]]:
    with keyed_aside(database_url) as served:
        yield served


def _browser_unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for a module's browser tests (they all live in
    test_browser.py); each test opens its own context. Not session-wide: while Playwright's
    synchronous API is open it keeps an event loop running on the test thread, which the
    asyncio tests of other modules need free."""
    reason = _browser_unavailable()
    if reason is not None:
        if os.environ.get("CHATKEEP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CHATKEEP_REQUIRE_BROWSER=1, but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context (its own cookies), closed after the test."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()
