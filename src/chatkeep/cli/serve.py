"""`chatkeep serve`: run the HTTP server."""

from __future__ import annotations

import errno
import logging
import socket
import sys
from pathlib import Path

import click
import uvicorn
from starlette.applications import Starlette

from chatkeep.backends.routing import ConfigError
from chatkeep.cli import heap
from chatkeep.cli.db import check_schema_before_serving
from chatkeep.cli.posture import refuse_exposed_without_keys
from chatkeep.cli.settings import describe_database, settings_from_flags
from chatkeep.cli.workers import Supervisor
from chatkeep.config import Settings
from chatkeep.http.app import create_app
from chatkeep.http.connection import connection_class
from chatkeep.log_setup import configure_logging
from chatkeep.log_writer import LineLog
from chatkeep.observability.metrics import Metrics
from chatkeep.observability.workers_metrics import WorkerMetricsDir
from chatkeep.ui.session import with_shared_session_secret

logger = logging.getLogger("chatkeep")


@click.command()
@click.option("--host", default=None, help="Address to listen on [CHATKEEP_HOST; 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [CHATKEEP_PORT; 8000].")
@click.option(
    "--database-url",
    default=None,
    help="sqlite:///file.db or postgresql://... [CHATKEEP_DATABASE_URL; sqlite:///chatkeep.db].",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML file of upstream model servers [CHATKEEP_CONFIG; none: echo model only].",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Logging level [CHATKEEP_LOG_LEVEL; info].",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as text or as JSON objects [CHATKEEP_LOG_FORMAT; text].",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Server processes sharing the port, about one per core [CHATKEEP_WORKERS; 1].",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    default=None,
    help="Serve on a non-loopback address although the database holds no API keys: anyone "
    "who can reach it can read every stored completion [CHATKEEP_INSECURE_NO_AUTH; off].",
)
def serve(
    host: str | None,
    port: int | None,
    database_url: str | None,
    config: Path | None,
    log_level: str | None,
    log_format: str | None,
    workers: int | None,
    insecure_no_auth: bool | None,
) -> None:
    """Start the server (SQLite file and the echo model by default)."""
    settings = settings_from_flags(
        host=host,
        port=port,
        database_url=database_url,
        config=config,
        log_level=log_level,
        log_format=log_format,
        workers=workers,
        insecure_no_auth=insecure_no_auth,
    )
    lines = LineLog(configure_logging(settings.log_level, settings.log_format))
    check_schema_before_serving(settings)
    refuse_exposed_without_keys(settings)
    try:
        app = create_app(settings, lines=lines)
    except (ConfigError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    listener = _listen(settings.host, settings.port)
    port = listener.getsockname()[1]
    models = settings.config.absolute() if settings.config else "none: the echo model only"
    logger.info(
        "chatkeep serving on %s with store %s; config file: %s%s",
        _url(settings.host, port),
        describe_database(settings.database_url),
        models,
        f"; {settings.workers} workers" if settings.workers > 1 else "",
    )
    if settings.workers == 1:
        _run(app, settings, listener)
        return
    del app  # each worker builds its own, in its own process
    heap.settle()  # before the fork: the workers inherit the frozen heap and never write it
    settings = with_shared_session_secret(settings)
    # Before the fork: every worker keeps its metrics in this directory's files.
    metrics_dir = WorkerMetricsDir.prepare(settings.metrics_dir)

    def work(slot: int) -> None:
        # The retention schedule runs in the first worker only (a restarted first worker
        # takes it up again); the others would only wait on its lock.
        mine = settings if slot == 0 else settings.model_copy(update={"purge_interval_seconds": 0})
        metrics = Metrics(
            project_label=mine.metrics_project_label, multiprocess_dir=metrics_dir.path
        )
        _run(create_app(mine, metrics=metrics, lines=lines), mine, listener)

    try:
        code = Supervisor(settings.workers, work, on_death=metrics_dir.worker_died).run()
    finally:
        metrics_dir.close()
    sys.exit(code)


def _run(app: Starlette, settings: Settings, listener: socket.socket) -> None:
    heap.settle()  # the app is built: what is alive now lives as long as the process
    server = uvicorn.Config(
        app,
        log_level=settings.log_level,
        # With JSON logs uvicorn's own records go through chatkeep's handler too.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        access_log=False,
        loop="uvloop",
        # httptools with chatkeep's limits, timeouts and JSON refusals (http/connection.py);
        # no WebSocket routes, so an `Upgrade: websocket` offer is declined like any other.
        http=connection_class(settings),
        ws="none",
        # chatkeep never reads the client's address, so X-Forwarded-For is not parsed
        # (uvicorn's proxy-headers middleware cost about 1% of a relayed request).
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(server).run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a port in use is one clear line, said
    before anything claims the server is serving."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise click.ClickException(f"Cannot listen on {host!r}: {error.strerror}.") from None
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as error:
        listener.close()
        where = _url(host, port)
        if error.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"Port {port} is already in use on {host} ({where}): stop what holds it, "
                "or pass --port (CHATKEEP_PORT)."
            ) from None
        raise click.ClickException(f"Cannot listen on {where}: {error.strerror}.") from None
    return listener


def _url(host: str, port: int) -> str:
    """The server's URL; an IPv6 address goes in brackets (`http://[::1]:8000`)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
