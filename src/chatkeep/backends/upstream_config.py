"""The settings of one upstream server: a `[upstreams.<name>]` table of the config file.

Below both `routing` (which reads the file) and `upstream` (which follows the settings), so
that neither has to import the other.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# The start-up check of an upstream never takes longer than this, whatever its timeouts.
CHECK_SECONDS_LIMIT = 5.0


class UpstreamConfig(BaseModel):
    """One `[upstreams.<name>]` table of the config file."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    base_url: str = Field(description="Base URL of the OpenAI-compatible API, with its `/v1`.")
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the API key; none: no key."
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to connect.")
    read_timeout: float = Field(
        default=600.0, gt=0, description="Longest silence from the upstream, in seconds."
    )
    total_timeout: float | None = Field(
        default=None, gt=0, description="Longest whole exchange, in seconds; none: no limit."
    )
    max_connections: int = Field(default=100, ge=1, description="Size of the connection pool.")
    max_response_bytes: int = Field(
        default=32 * 1024 * 1024,
        gt=0,
        description="Largest answer taken from the upstream, in bytes (a whole stream counts).",
    )
    forward_store: bool = Field(
        default=False, description="Forward `store` and `metadata` to this upstream."
    )

    @field_validator("api_key_env")
    @classmethod
    def _check_variable_name(cls, value: str | None) -> str | None:
        # Never echo the value: a key pasted here by mistake must not reach the logs.
        if value is not None and not _VARIABLE_NAME.match(value):
            raise ValueError(
                "must be the name of an environment variable (letters, digits, _), "
                "not the key itself"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, like http://127.0.0.1:8000/v1")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query string or fragment")
        return value.rstrip("/")

    @property
    def shown_url(self) -> str:
        """`base_url` as logs may show it: without a user or password in it."""
        parts = urlsplit(self.base_url)
        if parts.username is None and parts.password is None:
            return self.base_url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=host))

    @property
    def check_seconds(self) -> float:
        """How long the start-up check (`GET <base_url>/models`) may take."""
        return min(self.connect_timeout, CHECK_SECONDS_LIMIT)
