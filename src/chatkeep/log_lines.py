"""The log lines with fields: each template, and the names of its arguments in order.

The text format writes a line as its template says (`completion id=... model=...`); the
JSON format (`--log-format json`) writes the same record as one object, with each argument
under its name. Naming them here keeps the hot path's call a plain `logger.info(TEMPLATE,
*values)`: nothing is built for the JSON format unless it is on.
"""

from __future__ import annotations

from types import MappingProxyType

COMPLETION_LINE = (
    "completion id=%s request_id=%s project=%s model=%s backend=%s stream=%s status=ok "
    "prompt_tokens=%s completion_tokens=%s duration_ms=%.1f"
)
COMPLETION_FIELDS = (
    "completion_id",
    "request_id",
    "project",
    "model",
    "backend",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "duration_ms",
)

RESPONSE_LINE = (
    "response id=%s request_id=%s project=%s model=%s backend=%s stream=%s stored=%s "
    "status=%s input_tokens=%s output_tokens=%s duration_ms=%.1f"
)
RESPONSE_FIELDS = (
    "response_id",
    "request_id",
    "project",
    "model",
    "backend",
    "stream",
    "stored",
    "status",
    "input_tokens",
    "output_tokens",
    "duration_ms",
)

ACCESS_LINE = "request id=%s project=%s method=%s path=%s status=%d duration_ms=%.1f"
ACCESS_FIELDS = ("request_id", "project", "method", "path", "status", "duration_ms")

# Template -> argument names, for the JSON formatter.
FIELDS = MappingProxyType(
    {
        COMPLETION_LINE: COMPLETION_FIELDS,
        RESPONSE_LINE: RESPONSE_FIELDS,
        ACCESS_LINE: ACCESS_FIELDS,
    }
)
