"""The servers measured side by side, and how to start each one on the server core.

(a) the fake upstream itself, (b) the bare aiohttp pass-through, (c) chatkeep with store
off, (d) chatkeep storing on SQLite, (e) chatkeep storing on PostgreSQL, (f) LiteLLM's
proxy. Every relay points at the one shared fake upstream on the load core; (a) is a
second instance of it on the server core, to show what the upstream alone can do.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

import litellm_proxy
import pg
from processes import Server, free_port

BENCH = Path(__file__).resolve().parent
MODEL = "bench-model"
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant. Answer in one sentence."},
    {"role": "user", "content": "What does a gateway add on top of a model server?"},
]
METADATA = {"team": "bench", "env": "load"}


@dataclass
class Context:
    """Where things go, which cores to use, and what is available on this machine."""

    work: Path
    logs: Path
    server_core: int
    load_core: int
    upstream_base_url: str
    postgres_admin: str | None
    litellm_venv: Path
    python: str = sys.executable
    # Set for the baseline's twins (baseline.py): the whole environment chatkeep runs with
    # (None: `chatkeep_env()`), and a tag added to the names of its log and files.
    chatkeep_environment: dict[str, str] | None = None
    file_tag: str = ""

    def server_env(self) -> dict[str, str]:
        return chatkeep_env() if self.chatkeep_environment is None else self.chatkeep_environment


@dataclass
class Running:
    """A started target: its server, and what to undo when it stops."""

    server: Server
    database: str | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        self.server.stop()
        for cleanup in reversed(self.cleanups):
            cleanup()


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    store: bool
    start: Callable[[Context], Running]
    ready_timeout: float = 30.0


def chatkeep_env(pythonpath: Path | None = None) -> dict[str, str]:
    """The whole environment chatkeep runs with: this one minus CHATKEEP_* settings, so that
    only the flags given here apply; with `pythonpath` first on PYTHONPATH when given."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHATKEEP_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(pythonpath), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        )
    return env


def create_body(*, store: bool, stream: bool) -> bytes:
    """The body every target is sent: two messages; with store, two metadata pairs."""
    body: dict[str, object] = {"model": MODEL, "messages": MESSAGES}
    if store:
        body["store"] = True
        body["metadata"] = METADATA
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def _start_upstream(ctx: Context) -> Running:
    port = free_port()
    argv = [ctx.python, str(BENCH / "fake_upstream.py"), "--port", str(port)]
    return Running(
        Server(
            "fake upstream",
            argv,
            core=ctx.server_core,
            port=port,
            log=ctx.logs / "upstream-direct.log",
        )
    )


def _start_bare(ctx: Context) -> Running:
    port = free_port()
    argv = [
        ctx.python,
        str(BENCH / "bare_proxy.py"),
        "--port",
        str(port),
        "--upstream",
        ctx.upstream_base_url,
    ]
    return Running(
        Server("bare proxy", argv, core=ctx.server_core, port=port, log=ctx.logs / "bare-proxy.log")
    )


def write_chatkeep_config(path: Path, upstream_base_url: str) -> Path:
    path.write_text(f'default = "fake"\n\n[upstreams.fake]\nbase_url = "{upstream_base_url}"\n')
    return path


def start_chatkeep(
    ctx: Context, name: str, database_url: str, *, config: Path | None, port: int | None = None
) -> Server:
    port = port or free_port()
    argv = [
        ctx.python,
        "-m",
        "chatkeep",
        "serve",
        "--port",
        str(port),
        "--database-url",
        database_url,
    ]
    if config is not None:
        argv += ["--config", str(config)]
    return Server(
        name,
        argv,
        core=ctx.server_core,
        port=port,
        env=ctx.server_env(),
        whole_env=True,
        log=ctx.logs / f"{name}.log",
    )


def _chatkeep_sqlite(base_name: str) -> Callable[[Context], Running]:
    def start(ctx: Context) -> Running:
        name = base_name + ctx.file_tag
        config = write_chatkeep_config(ctx.work / f"{name}.toml", ctx.upstream_base_url)
        database = ctx.work / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        return Running(start_chatkeep(ctx, name, f"sqlite:///{database}", config=config))

    return start


def _start_chatkeep_postgres(ctx: Context) -> Running:
    admin = ctx.postgres_admin
    if admin is None:
        raise RuntimeError("PostgreSQL is not reachable")
    name = pg.create_database(admin)
    try:
        server_name = "chatkeep-postgres" + ctx.file_tag
        config = write_chatkeep_config(ctx.work / f"{server_name}.toml", ctx.upstream_base_url)
        server = start_chatkeep(ctx, server_name, pg.database_url(admin, name), config=config)
    except BaseException:
        pg.drop_database(admin, name)
        raise
    return Running(server, database=name, cleanups=[lambda: pg.drop_database(admin, name)])


def _start_litellm(ctx: Context) -> Running:
    executable = litellm_proxy.ensure_installed(ctx.litellm_venv, ctx.logs / "litellm-pip.log")
    config = litellm_proxy.write_config(
        ctx.work / "litellm.yaml", model=MODEL, upstream_base_url=ctx.upstream_base_url
    )
    port = free_port()
    argv = litellm_proxy.command(executable, config, port)
    return Running(
        Server(
            "litellm",
            argv,
            core=ctx.server_core,
            port=port,
            env=litellm_proxy.ENV,
            log=ctx.logs / "litellm.log",
        )
    )


TARGETS = [
    Target("upstream", "(a) fake upstream, direct", False, _start_upstream),
    Target("bare", "(b) bare aiohttp pass-through", False, _start_bare),
    Target("chatkeep", "(c) chatkeep, store off", False, _chatkeep_sqlite("chatkeep-nostore")),
    Target(
        "chatkeep-sqlite",
        "(d) chatkeep, store: true, SQLite",
        True,
        _chatkeep_sqlite("chatkeep-sqlite"),
    ),
    Target(
        "chatkeep-postgres", "(e) chatkeep, store: true, PostgreSQL", True, _start_chatkeep_postgres
    ),
    Target("litellm", "(f) LiteLLM proxy", False, _start_litellm, ready_timeout=180.0),
]
