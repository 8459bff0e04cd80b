"""The OpenAPI operations and schemas of OpenAI's usage and costs routes (`usage_routes`),
which `openapi.py` puts in chatkeep's document; shapes as OpenAI's document gives them, with
only the fields chatkeep fills."""

from __future__ import annotations

from typing import Any

from chatkeep.usage.query import (
    COMPLETIONS_GROUPS,
    COMPLETIONS_LIMITS,
    COSTS_GROUPS,
    COSTS_LIMITS,
)
from chatkeep.usage.report import COSTS_RESULT, CURRENCY, USAGE_RESULT

TAG = {
    "name": "Usage",
    "description": "OpenAI's usage and costs API: a project key sees its project, an admin "
    "key (`chatkeep keys create --admin`) every project.",
}
_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_INTEGER = {"type": "integer"}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}


def _array(name: str, description: str, items: dict[str, Any]) -> dict[str, Any]:
    return _query(name, description, {"type": "array", "items": items}, style="form", explode=True)


def _common(widths: list[str], groups: tuple[str, ...], limits: str) -> list[dict[str, Any]]:
    return [
        _query(
            "start_time",
            "Start of the range (Unix seconds), inclusive.",
            _INTEGER,
            required=True,
        ),
        _query("end_time", "End of the range (Unix seconds), exclusive; default: now.", _INTEGER),
        _query(
            "bucket_width",
            "Width of each bucket; buckets are aligned to it in UTC.",
            {"type": "string", "enum": widths, "default": "1d"},
        ),
        _array("project_ids", "Only these projects.", _STRING),
        _array("api_key_ids", "Only these API keys.", _STRING),
        _array("group_by", "Group the results by these fields.", {"enum": list(groups)}),
        _query("limit", f"Buckets per page: {limits}.", {"type": "integer", "minimum": 1}),
        _query("page", "The `next_page` of the previous response.", _STRING),
    ]


def _responses(schema: str, description: str) -> dict[str, Any]:
    return {
        "200": {
            "description": description,
            "headers": {"x-request-id": _ref("headers", "x-request-id")},
            "content": {"application/json": {"schema": _ref("schemas", schema)}},
        },
        **{
            status: _ref("responses", name)
            for status, name in (
                ("400", "BadRequest"),
                ("401", "Unauthorized"),
                ("503", "ServiceUnavailable"),
            )
        },
    }


def _limits(limits: dict[str, tuple[int, int]]) -> str:
    return "; ".join(f"`{w}` default {d}, at most {m}" for w, (d, m) in limits.items())


def usage_operations() -> dict[str, Any]:
    usage = _common(list(COMPLETIONS_LIMITS), COMPLETIONS_GROUPS, _limits(COMPLETIONS_LIMITS))
    usage += [
        _array("models", "Only these models.", _STRING),
        _array("user_ids", "Only these users (chatkeep has none: matches nothing).", _STRING),
        _query("batch", "`true`: batch jobs only (chatkeep has none).", {"type": "boolean"}),
    ]
    costs = _common(list(COSTS_LIMITS), COSTS_GROUPS, _limits(COSTS_LIMITS))
    return {
        "/v1/organization/usage/completions": {
            "get": {
                "operationId": "usage-completions",
                "tags": ["Usage"],
                "summary": "Completions usage per time bucket",
                "description": (
                    "Every completion the server answered, stored or not, per bucket and "
                    "group. `group_by=service_tier` is a 400: chatkeep does not record it."
                ),
                "parameters": usage,
                "responses": _responses("UsageCompletionsPage", "A page of buckets."),
            }
        },
        "/v1/organization/costs": {
            "get": {
                "operationId": "usage-costs",
                "tags": ["Usage"],
                "summary": "Costs per day, from the config file's prices",
                "description": (
                    "Models without a price cost nothing; the models of the page that have "
                    "none are named in the `x-chatkeep-unpriced-models` header."
                ),
                "parameters": costs,
                "responses": _responses("UsageCostsPage", "A page of daily buckets."),
            }
        },
    }


def _page(result: dict[str, Any]) -> dict[str, Any]:
    bucket = {
        "type": "object",
        "properties": {
            "object": {"const": "bucket"},
            "start_time": _INTEGER,
            "end_time": _INTEGER,
            "results": {"type": "array", "items": result},
        },
        "required": ["object", "start_time", "end_time", "results"],
    }
    return {
        "type": "object",
        "properties": {
            "object": {"const": "page"},
            "data": {"type": "array", "items": bucket},
            "has_more": {"type": "boolean"},
            "next_page": _NULLABLE_STRING,
        },
        "required": ["object", "data", "has_more", "next_page"],
    }


def usage_schemas() -> dict[str, Any]:
    usage_result = {
        "type": "object",
        "properties": {
            "object": {"const": USAGE_RESULT},
            **{
                name: _INTEGER
                for name in (
                    "input_tokens",
                    "output_tokens",
                    "input_cached_tokens",
                    "num_model_requests",
                )
            },
            **{name: _NULLABLE_STRING for name in ("project_id", "user_id", "api_key_id")},
            "model": _NULLABLE_STRING,
            "batch": {"type": ["boolean", "null"]},
            "service_tier": _NULLABLE_STRING,
        },
        "required": ["object", "input_tokens", "output_tokens", "num_model_requests"],
    }
    costs_result = {
        "type": "object",
        "properties": {
            "object": {"const": COSTS_RESULT},
            "amount": {
                "type": "object",
                "properties": {"value": {"type": "number"}, "currency": {"const": CURRENCY}},
            },
            **{name: _NULLABLE_STRING for name in ("line_item", "project_id", "api_key_id")},
            "quantity": {"type": ["number", "null"]},
            "quantity_unit": _NULLABLE_STRING,
        },
        "required": ["object"],
    }
    return {"UsageCompletionsPage": _page(usage_result), "UsageCostsPage": _page(costs_result)}
