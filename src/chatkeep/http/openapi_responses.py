"""The Responses API's part of chatkeep's OpenAPI document: its four operations, the
request schema (generated from `responses.request`) and the schemas of what they answer.

The answers' schemas are written out here, covering the fields chatkeep sends (OpenAI's
`Response` has many that only its built-in tools fill); the full shapes are OpenAI's.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import CoreSchema

from chatkeep.protocol.queries import DEFAULT_LIMIT, MAX_LIMIT
from chatkeep.responses.request import CreateResponse

REF_TEMPLATE = "#/components/schemas/{model}"
_OBJECT = {"type": "object"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_ERRORS = {
    status: {"$ref": f"#/components/responses/{name}"}
    for status, name in (
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("404", "NotFound"),
        ("413", "RequestTooLarge"),
        ("4XX", "UpstreamRejected"),
        ("502", "UpstreamError"),
        ("503", "ServiceUnavailable"),
        ("504", "UpstreamTimeout"),
    )
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=name)}


class _Generator(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False


def _errors(*statuses: str) -> dict[str, Any]:
    return {status: _ERRORS[status] for status in statuses}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"x-request-id": {"$ref": "#/components/headers/x-request-id"}},
        "content": {"application/json": {"schema": _ref(schema)}},
    }


_ITEM = {
    "type": "object",
    "description": "An input or output item: a `message`, `function_call` or "
    "`function_call_output`, with its `id` and `status`.",
    "required": ["id", "type"],
    "properties": {
        "id": {"type": "string"},
        "type": {"type": "string", "enum": ["message", "function_call", "function_call_output"]},
        "status": {"type": "string", "enum": ["in_progress", "completed", "incomplete"]},
    },
}

_RESPONSE = {
    "type": "object",
    "description": "OpenAI's `Response` object, as chatkeep fills it.",
    "required": [
        "id",
        "object",
        "created_at",
        "status",
        "error",
        "incomplete_details",
        "instructions",
        "model",
        "output",
        "parallel_tool_calls",
        "metadata",
        "tool_choice",
        "tools",
        "temperature",
        "top_p",
    ],
    "properties": {
        "id": {"type": "string", "pattern": "^resp_[0-9a-f]{48}$"},
        "object": {"const": "response"},
        "created_at": {"type": "integer"},
        "completed_at": {"type": ["integer", "null"]},
        "status": {"type": "string", "enum": ["completed", "incomplete", "in_progress"]},
        "error": {"type": "null"},
        "incomplete_details": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"reason": {"enum": ["max_output_tokens", "content_filter"]}},
                },
                {"type": "null"},
            ]
        },
        "instructions": _NULLABLE_STRING,
        "model": {"type": "string"},
        "output": {"type": "array", "items": _ref("ResponseItem")},
        "previous_response_id": _NULLABLE_STRING,
        "store": {"type": "boolean"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "usage": {"type": ["object", "null"]},
        "parallel_tool_calls": {"type": "boolean"},
        "tool_choice": {"type": ["string", "object"]},
        "tools": {"type": "array", "items": _OBJECT},
        "temperature": {"type": "number"},
        "top_p": {"type": "number"},
        "text": _OBJECT,
    },
}

_SCHEMAS: dict[str, Any] = {
    "Response": _RESPONSE,
    "ResponseItem": _ITEM,
    "ResponseItemList": {
        "type": "object",
        "required": ["object", "data", "has_more", "first_id", "last_id"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": _ref("ResponseItem")},
            "has_more": {"type": "boolean"},
            "first_id": _NULLABLE_STRING,
            "last_id": _NULLABLE_STRING,
        },
    },
    "DeletedResponse": {
        "type": "object",
        "required": ["id", "object", "deleted"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "response"},
            "deleted": {"const": True},
        },
    },
    "ResponseStreamEvent": {
        "type": "object",
        "description": "One typed event (`event:` names its `type`), numbered from 0.",
        "required": ["type", "sequence_number"],
        "properties": {"type": {"type": "string"}, "sequence_number": {"type": "integer"}},
    },
}


def schemas() -> dict[str, Any]:
    """The schemas these operations refer to, to merge into `components.schemas`."""
    generated = TypeAdapter(CreateResponse).json_schema(
        ref_template=REF_TEMPLATE, schema_generator=_Generator, mode="validation"
    )
    found: dict[str, Any] = dict(generated.pop("$defs", {}))
    found["CreateResponse"] = generated
    return {**found, **_SCHEMAS}


_RESPONSE_ID = {
    "name": "response_id",
    "in": "path",
    "required": True,
    "description": "A stored response's id (`resp_...`).",
    "schema": {"type": "string"},
}


def paths() -> dict[str, Any]:
    return {
        "/v1/responses": {
            "post": {
                "operationId": "createResponse",
                "tags": ["Responses"],
                "summary": "Create a model response",
                "description": (
                    "Answered through one Chat Completions call to the model `model` routes "
                    "to. `store` defaults to true (the project's policy rules); a stored "
                    "response is committed before it, or `response.completed`, is sent. "
                    "`previous_response_id` continues a stored conversation. Built-in tools, "
                    "`background`, `conversation` and `prompt` are 400s (docs/responses.md)."
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CreateResponse")}},
                },
                "responses": {
                    "200": {
                        "description": "The response, or its stream of typed events.",
                        "headers": {
                            "x-request-id": {"$ref": "#/components/headers/x-request-id"},
                            "x-chatkeep-stored": {"$ref": "#/components/headers/x-chatkeep-stored"},
                        },
                        "content": {
                            "application/json": {"schema": _ref("Response")},
                            "text/event-stream": {"schema": _ref("ResponseStreamEvent")},
                        },
                    },
                    **_errors("400", "401", "404", "413", "4XX", "502", "503", "504"),
                },
            }
        },
        "/v1/responses/{response_id}": {
            "parameters": [_RESPONSE_ID],
            "get": {
                "operationId": "getResponse",
                "tags": ["Responses"],
                "summary": "Retrieve a stored response",
                "responses": {
                    "200": _json("Response", "The stored response, as it was answered."),
                    **_errors("400", "401", "404", "503"),
                },
            },
            "delete": {
                "operationId": "deleteResponse",
                "tags": ["Responses"],
                "summary": "Delete a stored response",
                "description": "A conversation continued through it answers 404 afterwards.",
                "responses": {
                    "200": _json("DeletedResponse", "The response is gone."),
                    **_errors("401", "404", "503"),
                },
            },
        },
        "/v1/responses/{response_id}/input_items": {
            "get": {
                "operationId": "listInputItems",
                "tags": ["Responses"],
                "summary": "List the input items of a stored response's own call",
                "parameters": [
                    _RESPONSE_ID,
                    {
                        "name": "after",
                        "in": "query",
                        "description": "An item id of this response.",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_LIMIT,
                            "default": DEFAULT_LIMIT,
                        },
                    },
                    {
                        "name": "order",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["asc", "desc"], "default": "desc"},
                    },
                ],
                "responses": {
                    "200": _json("ResponseItemList", "One page of input items."),
                    **_errors("400", "401", "404", "503"),
                },
            }
        },
    }
