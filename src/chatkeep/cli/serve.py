"""`chatkeep serve`: run the HTTP server."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import uvicorn

from chatkeep.backends.routing import ConfigError
from chatkeep.cli.db import check_schema_before_serving
from chatkeep.cli.posture import refuse_exposed_without_keys
from chatkeep.cli.settings import describe_database, settings_from_flags
from chatkeep.http.app import create_app
from chatkeep.http.connection import connection_class

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
    insecure_no_auth: bool | None,
) -> None:
    """Start the server (SQLite file and the echo model by default)."""
    settings = settings_from_flags(
        host=host,
        port=port,
        database_url=database_url,
        config=config,
        log_level=log_level,
        insecure_no_auth=insecure_no_auth,
    )
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    check_schema_before_serving(settings)
    refuse_exposed_without_keys(settings)
    try:
        app = create_app(settings)
    except (ConfigError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    logger.info(
        "chatkeep serving on http://%s:%d with store %s",
        settings.host,
        settings.port,
        describe_database(settings.database_url),
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        # httptools with chatkeep's limits, timeouts and JSON refusals (http/connection.py);
        # no WebSocket routes, so an `Upgrade: websocket` offer is declined like any other.
        http=connection_class(settings),
        ws="none",
        timeout_graceful_shutdown=10,
    )
