"""Screenshots of every web UI page, for the README: a fresh SQLite store filled with
realistic conversations through the API, a real `chatkeep serve`, Debian's Chromium.

    python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]

Everything runs on loopback and stops by itself. Needs Playwright's Python package (the
test extras) and Chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.ui.conversations import all_requests  # noqa: E402

QUESTIONS = [
    ("support", "How do I rotate my API key without downtime?"),
    ("support", "Why was my card declined at checkout?"),
    ("search", "Summarise the three newest incident reports in two lines each."),
    ("search", "Find the clause about termination in contract 44-B."),
    ("agents", "Book a table for four at 8pm near the office."),
    ("i18n", "Translate the release notes headline into German."),
    ("evals", "Grade this answer against the rubric: 'Paris is in Italy.'"),
    ("support", "Can I move my subscription to the annual plan mid-cycle?"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def chatkeep(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "chatkeep", *args], env=env, check=True, capture_output=True
    )
    return done.stdout.decode().strip()


@contextmanager
def server(database_url: str, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "chatkeep", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--database-url", database_url, "--log-level", "warning"], env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("chatkeep serve did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def fill(client: openai.OpenAI) -> dict[str, str]:
    """The realistic conversations, then a page's worth of shorter ones; their ids by kind."""
    rng = random.Random(7)
    for n in range(26):
        team, question = QUESTIONS[n % len(QUESTIONS)]
        client.chat.completions.create(
            model=rng.choice(["gpt-4o-mini", "gpt-4o", "o4-mini"]),
            messages=[{"role": "user", "content": question}],
            store=True,
            metadata={"team": team, "env": rng.choice(["prod", "prod", "staging"])},
        )
    ids = {}
    for name, request in zip(
        ["support", "agent", "image", "choices", "xss"], all_requests(), strict=True
    ):
        if name == "xss":
            continue  # the tests show it as text; the screenshots show real work
        ids[name] = client.chat.completions.create(store=True, **request).id
    return ids


def shoot(page: Page, url: str, out: Path, name: str, *, full: bool = True) -> None:
    page.goto(url)
    page.screenshot(path=str(out / f"{name}.png"), full_page=full)
    print(f"  {name}.png  {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATKEEP_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory(prefix="chatkeep-shots-") as temp:
        database_url = f"sqlite:///{Path(temp) / 'chatkeep.db'}"
        key = chatkeep(
            "keys", "create", "--project", "acme-support", "--database-url", database_url, env=env
        )
        with server(database_url, env) as base, sync_playwright() as playwright:
            with openai.OpenAI(api_key=key, base_url=f"{base}/v1", max_retries=0) as client:
                ids = fill(client)
            browser = playwright.chromium.launch(executable_path=args.chromium)
            for scheme, size, suffix in [
                ("light", {"width": 1280, "height": 800}, ""),
                ("dark", {"width": 1280, "height": 800}, "-dark"),
                ("light", {"width": 390, "height": 844}, "-phone"),
            ]:
                context = browser.new_context(viewport=size, color_scheme=scheme)  # type: ignore[arg-type]
                page = context.new_page()
                if not suffix:
                    shoot(page, f"{base}/ui/sign-in", args.out, "sign-in", full=False)
                page.goto(f"{base}/ui/sign-in")
                page.fill("#key", key)
                page.click("button[type=submit]")
                shoot(page, f"{base}/ui", args.out, f"list{suffix}", full=False)
                shoot(
                    page, f"{base}/ui/completions/{ids['agent']}", args.out, f"tool-calls{suffix}"
                )
                if not suffix:
                    shoot(
                        page, f"{base}/ui?mk=team&mv=support&mk=env&mv=prod", args.out, "filtered"
                    )
                    shoot(page, f"{base}/ui/completions/{ids['image']}", args.out, "image")
                    shoot(page, f"{base}/ui/completions/{ids['choices']}", args.out, "choices")
                    shoot(
                        page,
                        f"{base}/ui/completions/{ids['support']}/delete",
                        args.out,
                        "delete",
                        full=False,
                    )
                    shoot(page, f"{base}/ui/usage", args.out, "usage", full=False)
                context.close()
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
