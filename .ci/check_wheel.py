"""Release check: build the sdist and wheel, install the wheel into a fresh venv, and serve.

What a user of `pip install chatkeep` gets must work on its own: the wheel, installed with
its dependencies into a new virtual environment (no editable checkout on the path), starts
`chatkeep serve` on a fresh SQLite file, answers a stored create and its retrieve, and
serves every file the package ships for its pages. Run by `.ci/run`; bounded in time, on
loopback only. Exits non-zero, saying why, on any failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0


def run(*args: str | Path, cwd: Path | None = None) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=cwd, timeout=600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def call(url: str, body: dict[str, object] | None = None) -> tuple[int, bytes, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read(), response.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("content-type", "")


def build(out: Path) -> Path:
    # No flags: the sdist first, then the wheel built from it, so a file the sdist lacks fails.
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    (wheel,) = out.glob("chatkeep-*.whl")
    (sdist,) = out.glob("chatkeep-*.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    if "chatkeep/__init__.py" not in names:
        sys.exit(f"the wheel {wheel.name} holds no chatkeep package: {names[:10]}")
    shipped = ROOT / "src"
    package_data = [
        path.relative_to(shipped).as_posix()
        for folder in ("templates", "static")
        for path in (shipped / "chatkeep" / "ui" / folder).iterdir()
    ]
    missing = sorted(set(package_data) - set(names))
    if missing:
        sys.exit(f"the wheel {wheel.name} lacks the web UI's files: {missing}")
    print(f"built {wheel.name} ({len(names)} files) and {sdist.name}")
    return wheel


def serve_from(venv_dir: Path, work: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATKEEP_")}
    env["PYTHONPATH"] = ""  # nothing from the checkout
    command = [str(venv_dir / "bin" / "chatkeep"), "serve", "--port", str(port)]
    command += ["--database-url", f"sqlite:///{work / 'chatkeep.db'}"]
    print("+", " ".join(command), flush=True)
    server = subprocess.Popen(command, cwd=work, env=env)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                if call(f"{base}/health")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("the installed chatkeep did not start")
            time.sleep(0.2)
        messages = [{"role": "user", "content": "hello from the wheel"}]
        body = {"model": "echo-1", "messages": messages, "store": True}
        status, raw, _ = call(f"{base}/v1/chat/completions", body)
        if status != 200:
            sys.exit(f"create answered {status}: {raw[:300]!r}")
        completion_id = json.loads(raw)["id"]
        status, raw, _ = call(f"{base}/v1/chat/completions/{completion_id}")
        if status != 200 or json.loads(raw)["id"] != completion_id:
            sys.exit(f"retrieve answered {status}: {raw[:300]!r}")
        check_pages(base, "/docs")
        check_pages(base, "/ui")  # open: a loopback server whose database holds no key
        check_pages(base, f"/ui/completions/{completion_id}")
        print(f"the installed wheel served a stored create and its retrieve ({completion_id})")
    finally:
        server.terminate()
        server.wait(timeout=TIMEOUT)


def check_pages(base: str, page_path: str) -> None:
    """Every same-origin asset and link a page references is served from the installed
    package (the web UI's templates and static files included)."""
    status, raw, kind = call(f"{base}{page_path}")
    if status == 404:
        return  # no pages in this version
    if status != 200 or "text/html" not in kind:
        sys.exit(f"{page_path} answered {status} {kind}")
    page = raw.decode()
    for marker in ('src="', 'href="'):
        for part in page.split(marker)[1:]:
            path = part.split('"', 1)[0]
            if path.startswith("/"):
                asset_status = call(f"{base}{path}")[0]
                if asset_status != 200:
                    sys.exit(f"{path}, referenced by {page_path}, answered {asset_status}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="chatkeep-wheel-") as temp:
        work = Path(temp)
        wheel = build(work / "dist")
        venv_dir = work / "venv"
        venv.EnvBuilder(with_pip=True).create(venv_dir)
        run(venv_dir / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheel)
        serve_from(venv_dir, work)
        shutil.rmtree(work / "dist", ignore_errors=True)


if __name__ == "__main__":
    main()
