"""`GET /openapi.json`: the OpenAPI 3.1 document of chatkeep's own routes.

`OPERATIONS` describes every route (a test fails when a route in `routes.ROUTES`, or the
create route, has no operation here); the schemas come from `protocol/` through
`openapi_schemas`. The document depends only on the code, so it is built once per process,
the first time it is asked for, and kept encoded.
"""

from __future__ import annotations

import functools
from typing import Any

from chatkeep import __version__
from chatkeep.http import openapi_export, openapi_responses, openapi_usage
from chatkeep.http.openapi_schemas import component_schemas, response_headers
from chatkeep.protocol.codec import encode_json
from chatkeep.protocol.queries import DEFAULT_LIMIT, MAX_LIMIT

SECURITY_SCHEME = "ApiKeyAuth"
_STRING = {"type": "string"}
_NO_AUTH: list[dict[str, list[str]]] = []  # an operation open to all, keys or not

_DESCRIPTION = """\
chatkeep serves OpenAI's Chat Completions API with stored completions: point the official \
SDKs at `/v1`. This document describes chatkeep's own routes, OpenAI's and its extensions \
(marked `x-chatkeep-extension`).

**Errors.** Every error, unknown routes included, is `{"error": {"message", "type", "param", \
"code"}}` with all four keys. An unknown path answers 404 `Invalid URL (METHOD /path).`; a \
documented path with another method answers 405 with an `Allow` header. Errors a retry \
cannot fix carry `x-should-retry: false`.

**Paths** are routed as sent and never redirected: a trailing or doubled slash is an \
unknown route, and a percent-encoded slash (`%2F`) stays inside the id it is part of.

**Keys.** Once the database holds API keys, every `/v1` route needs one, sent as \
`Authorization: Bearer`; `/health`, `/metrics`, `/openapi.json` and `/docs` never do.
"""


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"x-request-id": _ref("headers", "x-request-id")},
        "content": {"application/json": {"schema": _ref("schemas", schema)}},
    }


# status: (name in components.responses, when chatkeep answers it)
_ERRORS: dict[str, tuple[str, str]] = {
    "400": (
        "BadRequest",
        "The request is invalid, worded as OpenAI words it: `param` names the offending "
        "field (`messages[0].content`), `code` says why (`invalid_type`, "
        "`missing_required_parameter`, ...).",
    ),
    "401": (
        "Unauthorized",
        "No API key, or a wrong or revoked one, while the database holds keys.",
    ),
    "404": (
        "NotFound",
        "No such completion (unknown, never stored, deleted, or another project's: all "
        "alike), or no server answers for the model (`model_not_found`).",
    ),
    "413": ("RequestTooLarge", "The body is larger than `CHATKEEP_MAX_REQUEST_BYTES`."),
    "4XX": (
        "UpstreamRejected",
        "The model server refused the request: its own status and error, passed on.",
    ),
    "502": (
        "UpstreamError",
        "The model server failed, broke the connection, or answered with no chat completion "
        "or with more than its `max_response_bytes` (`upstream_response_too_large`).",
    ),
    "503": (
        "ServiceUnavailable",
        "The database is unreachable (`service_unavailable_error`); nothing was changed.",
    ),
    "504": ("UpstreamTimeout", "The model server did not answer in time."),
}


def _errors(*statuses: str) -> dict[str, Any]:
    return {status: _ref("responses", _ERRORS[status][0]) for status in statuses}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _after(description: str) -> dict[str, Any]:
    return {"name": "after", "in": "query", "description": description, "schema": _STRING}


_COMPLETION_ID = _ref("parameters", "completion_id")
_PAGE = [_ref("parameters", "limit"), _ref("parameters", "order")]
_KEYED_READ = _errors("401", "404", "503")


def _chat_completions() -> dict[str, Any]:
    return {
        "post": {
            "operationId": "createChatCompletion",
            "tags": ["Chat"],
            "summary": "Create a chat completion",
            "description": (
                "Answered by the model server configured for `model` (or by the built-in "
                "`echo` model). With `store: true` the completion is committed before the "
                "response, or before the final `data: [DONE]` of a stream, is sent. With "
                "`stream: true` the answer is server-sent events, one "
                "`CreateChatCompletionStreamResponse` per `data:` line, then `data: [DONE]`; "
                'a stream that fails after it began ends with one `data: {"error": ...}` '
                "event and no `[DONE]`, and stores nothing. Unknown top-level fields are "
                "passed on to the model server."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("schemas", "CreateChatCompletionRequest")}
                },
            },
            "responses": {
                "200": {
                    "description": "The completion, or its stream of chunks.",
                    "headers": {
                        "x-request-id": _ref("headers", "x-request-id"),
                        "x-chatkeep-stored": _ref("headers", "x-chatkeep-stored"),
                    },
                    "content": {
                        "application/json": {
                            "schema": _ref("schemas", "CreateChatCompletionResponse")
                        },
                        "text/event-stream": {
                            "schema": _ref("schemas", "CreateChatCompletionStreamResponse")
                        },
                    },
                },
                **_errors("400", "401", "404", "413", "4XX", "502", "503", "504"),
            },
        },
        "get": {
            "operationId": "listChatCompletions",
            "tags": ["Chat"],
            "summary": "List stored chat completions",
            "description": (
                "One page of the caller's project's stored completions, in creation order. "
                "Follow `last_id` as `after` while `has_more`: a walk never skips or repeats "
                "a completion that existed for the whole walk."
            ),
            "parameters": [
                {
                    "name": "model",
                    "in": "query",
                    "description": "Only completions made with this model.",
                    "schema": _STRING,
                },
                {
                    "name": "metadata",
                    "in": "query",
                    "description": (
                        "`metadata[key]=value` pairs; a completion must have all of them."
                    ),
                    "style": "deepObject",
                    "explode": True,
                    "schema": {"type": "object", "additionalProperties": _STRING},
                },
                _after(
                    "A completion id (`chatcmpl-...`): the page starts strictly after it in "
                    "the requested order, whether or not it still exists."
                ),
                *openapi_export.created_range(),
                *_PAGE,
            ],
            "responses": {
                "200": _json("ChatCompletionList", "One page of stored completions."),
                **_errors("400", "401", "503"),
            },
        },
    }


def _chat_completion() -> dict[str, Any]:
    stored = _json("StoredChatCompletion", "The stored completion.")
    return {
        "parameters": [_COMPLETION_ID],
        "get": {
            "operationId": "getChatCompletion",
            "tags": ["Chat"],
            "summary": "Retrieve a stored chat completion",
            "responses": {"200": stored, **_KEYED_READ},
        },
        "post": {
            "operationId": "updateChatCompletion",
            "tags": ["Chat"],
            "summary": "Replace a stored chat completion's metadata",
            "description": "The new map replaces the old one whole; `null` clears it.",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("schemas", "UpdateChatCompletionRequest")}
                },
            },
            "responses": {"200": stored, **_errors("400", "401", "404", "413", "503")},
        },
        "delete": {
            "operationId": "deleteChatCompletion",
            "tags": ["Chat"],
            "summary": "Delete a stored chat completion",
            "description": "Afterwards every route answers 404 for it, a second delete too.",
            "responses": {
                "200": _json("ChatCompletionDeleted", "The completion is gone."),
                **_KEYED_READ,
            },
        },
    }


def _messages() -> dict[str, Any]:
    return {
        "get": {
            "operationId": "getChatCompletionMessages",
            "tags": ["Chat"],
            "summary": "List a stored chat completion's input messages",
            "parameters": [
                _COMPLETION_ID,
                _after("A message id of this completion (`<completion id>-<index>`)."),
                *_PAGE,
            ],
            "responses": {
                "200": _json("ChatCompletionMessageList", "One page of input messages."),
                **_errors("400", "401", "404", "503"),
            },
        }
    }


def _models() -> dict[str, Any]:
    return {
        "/v1/models": {
            "get": {
                "operationId": "listModels",
                "tags": ["Models"],
                "summary": "List the models this server answers for",
                "responses": {
                    "200": _json("ListModelsResponse", "The models."),
                    **_errors("401", "503"),
                },
            }
        },
        "/v1/models/{model}": {
            "get": {
                "operationId": "retrieveModel",
                "tags": ["Models"],
                "summary": "Retrieve a model this server answers for",
                "parameters": [
                    _path_param("model", "A model name; one holding `/` is sent with it as `%2F`.")
                ],
                "responses": {"200": _json("Model", "The model."), **_KEYED_READ},
            }
        },
    }


def _chatkeep_routes() -> dict[str, Any]:
    """The routes that are chatkeep's own, open to every caller."""
    return {
        "/health": {
            "get": _extension(
                "getHealth",
                "Liveness and readiness: whether the database answers",
                {
                    "200": _json("HealthStatus", "The database answers."),
                    **_errors("503"),
                },
            )
        },
        "/metrics": {
            "get": _extension(
                "getMetrics",
                "Prometheus metrics; the metrics token as a bearer token when one is set",
                {"200": _content("The metrics.", "text/plain", _STRING), **_errors("401")},
            )
        },
        "/openapi.json": {
            "get": _extension(
                "getOpenAPIDocument",
                "This document",
                {"200": _content("This document.", "application/json", {"type": "object"})},
            )
        },
        "/docs": {
            "get": _extension(
                "getDocsPage",
                "This document, rendered by Swagger UI (served from this server only)",
                {"200": _content("The page.", "text/html", _STRING)},
            )
        },
        "/docs/static/{name}": {
            "get": _extension(
                "getDocsAsset",
                "A script, style sheet or icon of the docs page",
                {
                    "200": {
                        "description": "The file.",
                        "content": {
                            media: {"schema": _STRING}
                            for media in ("text/css", "text/javascript", "image/png")
                        },
                    },
                    "404": _content(
                        "No such file.", "application/json", _ref("schemas", "ErrorResponse")
                    ),
                },
                parameters=[_path_param("name", "The file's name.")],
            )
        },
    }


def _extension(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "tags": ["chatkeep"],
        "summary": summary,
        "security": _NO_AUTH,
        "x-chatkeep-extension": True,
        **({"parameters": parameters} if parameters else {}),
        "responses": responses,
    }


def _content(description: str, media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": schema}}}


def _components() -> dict[str, Any]:
    retry = {"x-should-retry": _ref("headers", "x-should-retry")}
    responses = {
        name: {
            "description": description,
            "headers": {"x-request-id": _ref("headers", "x-request-id"), **retry},
            "content": {"application/json": {"schema": _ref("schemas", "ErrorResponse")}},
        }
        for name, description in _ERRORS.values()
    }
    return {
        "schemas": _merged(
            {**component_schemas(), **openapi_usage.usage_schemas()}, openapi_responses.schemas()
        ),
        "responses": responses,
        "parameters": {
            "completion_id": _path_param("completion_id", "A stored completion's id."),
            "limit": {
                "name": "limit",
                "in": "query",
                "description": "How many items a page holds.",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                },
            },
            "order": {
                "name": "order",
                "in": "query",
                "description": "Creation order, oldest first (`asc`) or newest first.",
                "schema": {"type": "string", "enum": ["asc", "desc"], "default": "asc"},
            },
        },
        "headers": response_headers(),
        "securitySchemes": {
            SECURITY_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "A key from `chatkeep keys create`. While the database holds no key, a "
                    "server on a loopback address runs open and needs none."
                ),
            }
        },
    }


def _merged(schemas: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Both sets of schemas; a name both use must mean one schema."""
    for name, schema in more.items():
        if schemas.setdefault(name, schema) != schema:
            raise RuntimeError(f"two schemas are named {name}")
    return dict(sorted(schemas.items()))


def openapi_document() -> dict[str, Any]:
    """The document, built anew (see `openapi_json` for the cached, encoded one)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chatkeep",
            "version": __version__,
            "description": _DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [
            {"name": "Chat", "description": "OpenAI's Chat Completions, stored."},
            {"name": "Models", "description": "OpenAI's models endpoints."},
            {"name": "Responses", "description": "OpenAI's Responses API, stored."},
            openapi_export.TAG,
            openapi_usage.TAG,
            {"name": "chatkeep", "description": "chatkeep's own routes; no key needed."},
        ],
        "security": [{SECURITY_SCHEME: []}],
        "paths": {
            "/v1/chat/completions": _chat_completions(),
            "/v1/chat/completions/{completion_id}": _chat_completion(),
            "/v1/chat/completions/{completion_id}/messages": _messages(),
            "/v1/chatkeep/exports/chat_completions": openapi_export.export_operation(),
            **openapi_usage.usage_operations(),
            **openapi_responses.paths(),
            **_models(),
            **_chatkeep_routes(),
        },
        "components": _components(),
    }


@functools.cache
def openapi_json() -> bytes:
    """The document, encoded; built on first use and kept, since only the code changes it."""
    return encode_json(openapi_document())
