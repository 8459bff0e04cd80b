"""The OpenAPI operation of `GET /v1/chatkeep/exports/chat_completions` (`export_route`),
which `openapi.py` puts in chatkeep's document beside OpenAI's routes."""

from __future__ import annotations

from typing import Any

from chatkeep.export.options import FORMATS
from chatkeep.protocol.queries import MAX_CREATED

TAG = {
    "name": "Export",
    "description": "chatkeep's export of stored completions as JSON lines; needs a key.",
}
_STRING = {"type": "string"}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}


def created_range() -> list[dict[str, Any]]:
    """chatkeep's `created_after` / `created_before` list extensions (list and export)."""
    seconds = {"type": "integer", "minimum": 0, "maximum": MAX_CREATED}
    return [
        _query(
            "created_after",
            "chatkeep's extension: only completions created strictly after this time "
            "(Unix seconds).",
            seconds,
        ),
        _query(
            "created_before",
            "chatkeep's extension: only completions created strictly before this time "
            "(Unix seconds).",
            seconds,
        ),
    ]


def export_operation() -> dict[str, Any]:
    parameters = [
        _query(
            "format",
            "`openai-finetune` (OpenAI's chat fine-tuning lines), `openai-evals` (eval items "
            "with their samples) or `jsonl` (the stored objects with their messages).",
            {"type": "string", "enum": list(FORMATS)},
            required=True,
        ),
        _query("model", "Only completions made with this model.", _STRING),
        _query(
            "metadata",
            "`metadata[key]=value` pairs; a completion must have all of them.",
            {"type": "object", "additionalProperties": _STRING},
            style="deepObject",
            explode=True,
        ),
        _ref("parameters", "order"),
        _query("after", "A completion id: start strictly after it, in `order`.", _STRING),
        *created_range(),
        _query(
            "finish_reason",
            "`stop`: leave out answers that did not stop by themselves (length, tool "
            "calls, content filter).",
            {"type": "string", "enum": ["stop"]},
        ),
        _query("limit", "At most this many lines.", {"type": "integer", "minimum": 1}),
        _query(
            "sample_rate",
            "Keep this share of the completions, chosen by `seed`: the same seed picks the "
            "same completions, a larger rate a superset.",
            {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1},
        ),
        _query("seed", "The sample's seed.", {"type": "integer", "default": 0}),
    ]
    return {
        "get": {
            "operationId": "exportChatCompletions",
            "tags": ["Export"],
            "summary": "Export stored chat completions as JSON lines",
            "description": (
                "The caller's project's stored completions selected by the list filters, "
                "streamed one JSON object per line as the store is walked; completions "
                "without content (retention, `store_content: false`) are not exported. An "
                "unknown parameter is a 400. docs/export.md describes each format."
            ),
            "x-chatkeep-extension": True,
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "The lines, newline-terminated.",
                    "headers": {"x-request-id": _ref("headers", "x-request-id")},
                    "content": {
                        "application/x-ndjson": {
                            "schema": {
                                "type": "string",
                                "description": "One JSON object per line.",
                            }
                        }
                    },
                },
                **{
                    status: _ref("responses", name)
                    for status, name in (
                        ("400", "BadRequest"),
                        ("401", "Unauthorized"),
                        ("503", "ServiceUnavailable"),
                    )
                },
            },
        }
    }
