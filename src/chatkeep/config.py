"""Settings: the only module that reads the environment.

Values come from, highest first: command-line flags (passed as keyword arguments), then
`CHATKEEP_*` environment variables, then the defaults below. Every field has a description;
the README lists every setting and a test keeps the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///chatkeep.db"


def process_environment() -> Mapping[str, str]:
    """The environment, for the variables a config file names (upstream API keys)."""
    return os.environ


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATKEEP_", extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="Address the server listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port the server listens on.")
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description=(
            "Where stored completions live: `sqlite:///relative/path.db`, "
            "`sqlite:////absolute/path.db`, or a `postgresql://` URL."
        ),
    )
    config: Path | None = Field(
        default=None,
        description=(
            "TOML file declaring upstream model servers and which model names each serves; "
            "without one, the echo model answers every name."
        ),
    )
    echo_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated model names the built-in echo model answers; empty means it "
            "answers every model name."
        ),
    )
    max_request_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted, in bytes; larger bodies get 413.",
    )
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description=(
            "Largest request line and headers accepted together, in bytes; larger get 431 "
            "and the connection is closed."
        ),
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description=(
            "Seconds a request's line and headers may take to arrive in all, counted from "
            "their first byte (on a new connection, from its opening); a slower client gets "
            "408 and is disconnected, one that sent nothing is disconnected."
        ),
    )
    body_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description=(
            "Longest pause, in seconds, between two reads of a request body while the server "
            "waits for it; a longer pause gets 408 and the connection is closed. Never applies "
            "to the response, however long it streams."
        ),
    )
    body_min_bytes_per_second: float = Field(
        default=1024.0,
        ge=0,
        description=(
            "Slowest pace accepted for a request body: after a grace of "
            "`body_timeout_seconds`, it must deliver this many bytes for each further second; "
            "slower gets 408 and the connection is closed. `0` turns the pace check off."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Logging level of the server."
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description=(
            "`text` (one `key=value` line per record) or `json` (one JSON object per record, "
            "its fields named: docs/observability.md)."
        ),
    )
    access_log: bool = Field(
        default=False,
        description=(
            "Log one INFO line per HTTP request (logger `chatkeep.access`): request id, "
            "project, method, path, status, duration. Off by default: every model call is "
            "already logged by its `completion` line."
        ),
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token that `GET /metrics` then requires (`Authorization: Bearer ...`); "
            "unset, `/metrics` answers anyone who can reach the server. Never a project key."
        ),
    )
    metrics_project_label: bool = Field(
        default=False,
        description=(
            "Label the model-call metrics with the project too: one series per project and "
            "model, so only for a bounded number of projects (docs/observability.md)."
        ),
    )
    metrics_dir: Path | None = Field(
        default=None,
        description=(
            "With `workers` above 1: the directory where the workers keep their metric "
            "files for `/metrics` to add up (emptied at start); unset, a fresh temporary "
            "directory, removed at exit."
        ),
    )
    sqlite_synchronous: Literal["normal", "full"] = Field(
        default="normal",
        description=(
            "SQLite `synchronous` pragma in WAL mode. `normal` keeps every acknowledged "
            "completion across a crash or kill of the server; `full` also across power loss."
        ),
    )
    store_batch_size: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="Most stored completions written together in one transaction.",
    )
    store_read_threads: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Threads (each with its own connection) serving reads of the SQLite store.",
    )

    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Server processes sharing the port (`chatkeep serve --workers`); one per core "
            "for the relay's full throughput (docs/deploy.md)."
        ),
    )

    purge_interval_seconds: float = Field(
        default=3600.0,
        ge=0,
        description=(
            "Seconds between two retention purges inside `chatkeep serve` (the first runs at "
            "start-up); `0` turns the schedule off, leaving `chatkeep purge` to a cron job. "
            "Servers sharing a PostgreSQL database take turns."
        ),
    )

    usage_flush_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description=(
            "Seconds between two writes of the usage counted in memory to the database (each "
            "worker process writes its own; a graceful shutdown writes the rest). A process "
            "killed outright loses at most this long of its usage."
        ),
    )
    usage_retention_days: int = Field(
        default=400,
        ge=0,
        description=(
            "Days the per-minute usage rows (the usage and costs routes) are kept, apart from "
            "completions' retention; `0` keeps them forever."
        ),
    )

    postgres_pool_min: int = Field(
        default=1, ge=0, le=1000, description="PostgreSQL connections kept open."
    )
    postgres_pool_max: int = Field(
        default=10,
        ge=2,
        le=1000,
        description="Most PostgreSQL connections; at most half of them commit inserts.",
    )
    postgres_command_timeout: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds a PostgreSQL call may wait for a connection and then for its statement "
            "before the request answers 503."
        ),
    )

    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description=(
            "Seconds a server trusts what it last read about API keys (a verified key, or "
            "that the database holds none) before asking the database again: a revoked key "
            "stops working, and a first key closes an open server, within this time."
        ),
    )
    insecure_no_auth: bool = Field(
        default=False,
        description=(
            "Serve on a non-loopback address even though the database holds no API keys: "
            "anyone who can reach the server can then read, change and delete every stored "
            "completion. Without it such a server refuses to start."
        ),
    )

    ui_session_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Secret that signs the web UI's session cookies (`/ui`); unset, each start "
            "draws a random one, so signing in again is needed after a restart. Servers "
            "that share sign-ins (behind one load balancer) need the same value."
        ),
    )
    ui_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        description="Hours a web UI sign-in lasts before the key must be pasted again.",
    )

    @field_validator("echo_models", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @model_validator(mode="after")
    def _pool_bounds(self) -> Self:
        if self.postgres_pool_min > self.postgres_pool_max:
            raise ValueError("postgres_pool_min must not exceed postgres_pool_max")
        return self
