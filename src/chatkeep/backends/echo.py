"""The echo backend: a deterministic, offline model that answers with the last user message.

It owns what the reply says (the echoed text, a forced tool call, forced JSON), where `stop`
and the token limit cut it, its logprobs and usage (counted as `tokens` documents), and
rendering it as a `chat.completion` or as `chat.completion.chunk`s that add up to the same.

Rules chosen here: `stop` cuts only plain-text replies (JSON output and tool calls are
structured, and a cut would only break them); the token limit cuts everything, as it does a
real model, giving `finish_reason: "length"` and possibly unparsable JSON. Logprobs are
0.0 for every token; `top_logprobs` alternatives after the token itself come from
`ALTERNATIVE_TOKENS`, at -9999.0 ("very unlikely" in the API's own words). A reply that
is a tool call has `logprobs.content == []`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import orjson

from chatkeep import __version__
from chatkeep.backends.patterns import UnsatisfiableSchemaError
from chatkeep.backends.schema_instance import schema_instance
from chatkeep.backends.tokens import content_texts, count_prompt_tokens, split_tokens
from chatkeep.errors import InvalidRequestError
from chatkeep.ids import new_tool_call_id
from chatkeep.protocol.responses import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionTokenLogprob,
    Choice,
    ChoiceLogprobs,
    ChunkChoice,
    CompletionUsage,
    FinishReason,
    Function,
    Model,
)

if TYPE_CHECKING:
    from chatkeep.backends.base import BackendRequest

DEFAULT_MODEL = "echo"
MODEL_CREATED = 1_704_067_200  # 2024-01-01T00:00:00Z: fixed, so model listings are stable
SERVICE_TIER = "default"
SYSTEM_FINGERPRINT = (
    "fp_" + hashlib.sha256(f"chatkeep-echo/{__version__}".encode()).hexdigest()[:10]
)
UNLIKELY_LOGPROB = -9999.0
# 20 distinct tokens: `top_logprobs` is at most 20, one of which is the token itself.
ALTERNATIVE_TOKENS = (
    *(" the", " and", " of", " to", " a", " in", " is", " that", " for", " it"),
    *(",", ".", "\n", "!", "?", " I", " you", " we", " not", " be"),
)

ReplyKind = Literal["text", "function", "custom", "function_call"]


@dataclass(frozen=True, slots=True)
class ForcedCall:
    """A tool (or deprecated function) call the request's `tool_choice` forces."""

    kind: Literal["function", "custom", "function_call"]
    name: str
    parameters: Any  # the function's JSON Schema, or None


@dataclass(frozen=True, slots=True)
class Reply:
    """What every choice says: the tokens of its content, arguments or custom input."""

    kind: ReplyKind
    name: str
    tokens: tuple[str, ...]
    finish_reason: FinishReason

    @property
    def text(self) -> str:
        return "".join(self.tokens)


class EchoBackend:
    """Serves the named models (every name when none are given) by echoing."""

    name = "echo"

    def __init__(self, models: Sequence[str] = ()) -> None:
        self._models = list(models)

    def serves(self, model: str) -> bool:
        return not self._models or model in self._models

    def models(self) -> list[Model]:
        return [
            {"id": name, "object": "model", "created": MODEL_CREATED, "owned_by": "chatkeep"}
            for name in self._models or [DEFAULT_MODEL]
        ]

    async def create(self, request: BackendRequest) -> ChatCompletion:
        body = request.body
        reply = plan_reply(body)
        top = top_logprobs(body)
        choices: list[Choice] = [
            {
                "index": index,
                "message": message(reply, new_tool_call_id()),
                "logprobs": choice_logprobs(reply, top),
                "finish_reason": reply.finish_reason,
            }
            for index in range(choice_count(body))
        ]
        return {
            "id": request.completion_id,
            "object": "chat.completion",
            "created": request.created,
            "model": body["model"],
            "choices": choices,
            "usage": usage(body, reply),
            "service_tier": SERVICE_TIER,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    async def stream(self, request: BackendRequest) -> AsyncIterator[list[ChatCompletionChunk]]:
        # The whole answer is ready at once: one batch, written to the client in one frame.
        yield list(self._chunks(request))

    def _chunks(self, request: BackendRequest) -> Iterator[ChatCompletionChunk]:
        body = request.body
        reply = plan_reply(body)
        top = top_logprobs(body)

        def chunk(choices: list[ChunkChoice]) -> ChatCompletionChunk:
            out: ChatCompletionChunk = {
                "id": request.completion_id,
                "object": "chat.completion.chunk",
                "created": request.created,
                "model": body["model"],
                "service_tier": SERVICE_TIER,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": choices,
            }
            if request.include_usage:
                out["usage"] = None
            return out

        for index in range(choice_count(body)):
            for choice in choice_deltas(reply, index, new_tool_call_id(), top):
                yield chunk([choice])
        if request.include_usage:
            yield {**chunk([]), "usage": usage(body, reply)}

    async def aclose(self) -> None:
        return None


def plan_reply(body: dict[str, Any]) -> Reply:
    """The reply to a request body: forced call, forced JSON, or the echoed text, then cut."""
    text = last_user_text(body.get("messages") or [])
    forced = forced_call(body)
    finish: FinishReason
    if forced is not None:
        kind: ReplyKind = forced.kind
        payload = text if kind == "custom" else call_arguments(forced, text)
        finish = "function_call" if kind == "function_call" else "tool_calls"
    else:
        kind, finish = "text", "stop"
        structured = structured_content(body, text)
        payload = cut_at_stop(text, body.get("stop")) if structured is None else structured
    tokens = split_tokens(payload)
    limit = body.get("max_completion_tokens")
    limit = body.get("max_tokens") if limit is None else limit
    if isinstance(limit, int) and len(tokens) > limit:
        tokens, finish = tokens[: max(limit, 0)], "length"
    return Reply(kind, forced.name if forced else "", tuple(tokens), finish)


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last `user` message: its string, or its text parts joined."""
    for item in reversed(messages):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            return "".join(content_texts(content if isinstance(content, str | list) else None))
    return ""


def cut_at_stop(text: str, stop: Any) -> str:
    """`text` up to the earliest occurrence of any stop sequence (empty ones never match)."""
    sequences = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    found = [text.find(s) for s in sequences if isinstance(s, str) and s]
    return text[: min((i for i in found if i >= 0), default=len(text))]


def structured_content(body: dict[str, Any], text: str) -> str | None:
    """The JSON `response_format` asks for, or None for a plain-text reply."""
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind not in ("json_object", "json_schema"):
        return None
    spec = response_format.get("json_schema") if isinstance(response_format, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    if kind == "json_object" or "schema" not in spec:
        return orjson.dumps({"echo": text}).decode()
    what = f"response_format '{spec.get('name', '')}'"
    return json_for_schema(spec["schema"], text, what, "response_format")


def forced_call(body: dict[str, Any]) -> ForcedCall | None:
    """The call `tool_choice` (or deprecated `function_call`) forces, if it forces one.

    "required" picks the first function tool (else the first custom tool); an
    `allowed_tools` choice in "required" mode picks the first allowed tool listed.
    """
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice")
    if choice == "required":
        ordered = sorted(tools, key=lambda t: t.get("type") != "function")
        return call_for_tool(ordered[0], tools) if ordered else None
    if isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        return call_for_tool(choice, tools)
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        if allowed.get("mode") == "required" and allowed.get("tools"):
            return call_for_tool(allowed["tools"][0], tools)
    function_call = body.get("function_call")
    if isinstance(function_call, dict) and isinstance(function_call.get("name"), str):
        name = function_call["name"]
        functions = [f for f in body.get("functions") or [] if isinstance(f, dict)]
        found = next((f for f in functions if f.get("name") == name), {})
        return ForcedCall("function_call", name, found.get("parameters"))
    return None


def call_for_tool(reference: dict[str, Any], tools: list[dict[str, Any]]) -> ForcedCall:
    """The call to a tool named by `reference`, with the parameters its definition gives."""
    kind: Literal["function", "custom"] = "function"
    if reference.get("type") == "custom":
        kind = "custom"
    name = str((reference.get(kind) or {}).get("name", ""))
    definitions = (t.get(kind) or {} for t in tools if t.get("type") == kind)
    definition = next((d for d in definitions if d.get("name") == name), None)
    # An allowed-tools entry may carry the whole definition itself.
    definition = definition or reference.get(kind) or {}
    return ForcedCall(kind, name, definition.get("parameters"))


def call_arguments(forced: ForcedCall, text: str) -> str:
    """A JSON arguments string valid against the function's `parameters` schema."""
    if not forced.parameters:
        return "{}"  # "Omitting `parameters` defines a function with an empty parameter list."
    param = "functions" if forced.kind == "function_call" else "tools"
    return json_for_schema(forced.parameters, text, f"function '{forced.name}'", param)


def json_for_schema(schema: Any, text: str, what: str, param: str) -> str:
    """JSON text valid against `schema`; a schema with no instance is the client's error."""
    try:
        return orjson.dumps(schema_instance(schema, text)).decode()
    except (UnsatisfiableSchemaError, orjson.JSONEncodeError) as error:
        # orjson refuses values nested over 255 deep and integers beyond 64 bits.
        raise InvalidRequestError(f"Invalid schema for {what}: {error}.", param=param) from None


def choice_count(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


def top_logprobs(body: dict[str, Any]) -> int | None:
    """How many alternatives each token's logprob lists, or None without `logprobs`."""
    if body.get("logprobs") is not True:
        return None
    top = body.get("top_logprobs")
    return top if isinstance(top, int) and top > 0 else 0


def message(reply: Reply, call_id: str) -> ChatCompletionMessage:
    out: ChatCompletionMessage = {
        "role": "assistant",
        "content": reply.text if reply.kind == "text" else None,
        "refusal": None,
        "annotations": [],
    }
    if reply.kind == "function_call":
        out["function_call"] = {"name": reply.name, "arguments": reply.text}
    elif reply.kind == "function":
        call: Function = {"name": reply.name, "arguments": reply.text}
        out["tool_calls"] = [{"id": call_id, "type": "function", "function": call}]
    elif reply.kind == "custom":
        custom = {
            "id": call_id,
            "type": "custom",
            "custom": {"name": reply.name, "input": reply.text},
        }
        # The SDK's union has custom calls; our TypedDict names the function shape only.
        out["tool_calls"] = [cast(Any, custom)]
    return out


def choice_logprobs(reply: Reply, top: int | None) -> ChoiceLogprobs | None:
    if top is None:
        return None
    content = token_logprobs(reply.tokens, top) if reply.kind == "text" else []
    return {"content": content, "refusal": None}


def token_logprobs(tokens: Sequence[str], top: int) -> list[ChatCompletionTokenLogprob]:
    """Each token certain (0.0), with `top` alternatives: itself, then unlikely fillers."""
    entries: list[ChatCompletionTokenLogprob] = []
    for token in tokens:
        others = [t for t in ALTERNATIVE_TOKENS if t != token][: max(top - 1, 0)]
        entries.append(
            {
                "token": token,
                "logprob": 0.0,
                "bytes": list(token.encode()),
                "top_logprobs": [
                    {
                        "token": t,
                        "logprob": UNLIKELY_LOGPROB if t != token else 0.0,
                        "bytes": list(t.encode()),
                    }
                    for t in [token, *others][:top]
                ],
            }
        )
    return entries


def usage(body: dict[str, Any], reply: Reply) -> CompletionUsage:
    prompt = count_prompt_tokens([m for m in body.get("messages") or [] if isinstance(m, dict)])
    completion = len(reply.tokens) * choice_count(body)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def choice_deltas(reply: Reply, index: int, call_id: str, top: int | None) -> Iterator[ChunkChoice]:
    """One choice's stream: the role, its tokens or tool call in pieces, the finish reason."""
    logprobs = choice_logprobs(reply, top)  # the empty list of a tool call goes out first
    is_text = reply.kind == "text"
    yield {
        "index": index,
        "delta": {"role": "assistant", "content": "" if is_text else None, "refusal": None},
        "logprobs": {"content": [], "refusal": None} if logprobs is not None else None,
        "finish_reason": None,
    }
    # Text deltas are the tokens one for one, so the i-th delta carries the i-th logprob.
    entries = (logprobs["content"] or []) if logprobs is not None and is_text else []
    for position, delta in enumerate(reply_deltas(reply, call_id)):
        yield {
            "index": index,
            "delta": cast(Any, delta),
            "logprobs": {"content": [entries[position]], "refusal": None} if entries else None,
            "finish_reason": None,
        }
    yield {"index": index, "delta": {}, "logprobs": None, "finish_reason": reply.finish_reason}


def reply_deltas(reply: Reply, call_id: str) -> Iterator[dict[str, Any]]:
    """The deltas that spell out a reply: content tokens, or a call then argument pieces."""
    if reply.kind == "text":
        yield from ({"content": token} for token in reply.tokens)
        return
    if reply.kind == "function_call":
        yield {"function_call": {"name": reply.name, "arguments": ""}}
        yield from ({"function_call": {"arguments": token}} for token in reply.tokens)
        return
    field, key = ("function", "arguments") if reply.kind == "function" else ("custom", "input")
    head = {"index": 0, "id": call_id, "type": reply.kind, field: {"name": reply.name, key: ""}}
    yield {"tool_calls": [head]}
    for token in reply.tokens:
        yield {"tool_calls": [{"index": 0, field: {key: token}}]}
