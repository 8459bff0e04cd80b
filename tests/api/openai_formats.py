"""OpenAI's documented formats for fine-tuning and eval data, as JSON Schema validators over
the official OpenAPI document (`../shared/openai-openapi/openapi.yaml`).

`FineTuneChatRequestInput` ("the per-line training example of a fine-tuning input file for
chat models using the supervised method") is written out here as OpenAI published it: the
copy of the document beside the checkout no longer carries that schema, but still carries
every schema it refers to, which are used as they are. Those schemas allow keys they do not
name, so `unknown_keys` also reports every key of a line that its schema does not name.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.api.test_openapi_conformance import SPEC_URI, _spec


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}


# By role, the message schemas of the training format's `messages` items.
MESSAGE_SCHEMAS = {
    "system": "ChatCompletionRequestSystemMessage",
    "user": "ChatCompletionRequestUserMessage",
    "assistant": "FineTuneChatCompletionRequestAssistantMessage",
    "tool": "ChatCompletionRequestToolMessage",
    "function": "ChatCompletionRequestFunctionMessage",
}
FINE_TUNE_CHAT_REQUEST_INPUT = {
    "type": "object",
    "properties": {
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {"oneOf": [_ref(name) for name in MESSAGE_SCHEMAS.values()]},
        },
        "tools": {"type": "array", "items": _ref("ChatCompletionTool")},
        "parallel_tool_calls": _ref("ParallelToolCalls"),
        "functions": {"type": "array", "items": _ref("ChatCompletionFunctions")},
    },
}
# One line of an eval's JSONL data: an item of `EvalJsonlFileContentSource.content`.
EVAL_JSONL_ITEM = {
    "$ref": f"{SPEC_URI}#/components/schemas/EvalJsonlFileContentSource/properties/content/items"
}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    resource = Resource(contents=_spec(), specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return Draft202012Validator(schema, registry=registry)


def errors(schema: dict[str, Any], line: Any) -> list[str]:
    found = _validator(schema).iter_errors(line)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def _properties(name: str) -> set[str]:
    """The keys a spec schema names, through `allOf`."""
    schema = _spec()["components"]["schemas"][name]
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        if "$ref" in part:
            names |= _properties(part["$ref"].rsplit("/", 1)[1])
        names |= set(part.get("properties", {}))
    return names


def unknown_keys(line: dict[str, Any]) -> list[str]:
    """Keys of a training line, or of its messages, that the format does not name."""
    unknown = [key for key in line if key not in FINE_TUNE_CHAT_REQUEST_INPUT["properties"]]
    for index, message in enumerate(line.get("messages", [])):
        allowed = _properties(MESSAGE_SCHEMAS.get(message.get("role"), ""))
        unknown += [f"messages/{index}/{key}" for key in message if key not in allowed]
    return unknown
