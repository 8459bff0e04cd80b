"""Assembling the whole `chat.completion` a stream of `chat.completion.chunk`s describes.

The service feeds every chunk it relays (upstream or echo) to a `ChatCompletionAccumulator`
and stores `result()`: choices by index, text concatenated, tool calls merged by index,
logprobs lists joined, the last finish reason, model and usage as the chunks carried them.
"""

from __future__ import annotations

from typing import Any, cast

from chatkeep.protocol.responses import ChatCompletion, ChatCompletionChunk

# Delta keys with their own rules; any other delta key (vLLM's `reasoning_content`, ...) is
# merged generically: strings concatenated, lists extended, anything else last-wins.
_DELTA_KEYS = frozenset(
    {"role", "content", "refusal", "tool_calls", "function_call", "annotations", "audio"}
)
_CHOICE_KEYS = frozenset({"index", "delta", "logprobs", "finish_reason"})
# `id` and `type` of a tool call are set, never concatenated: some servers repeat them.
_SET_KEYS = frozenset({"index", "id", "type"})


def _merge(into: dict[str, Any], delta: dict[str, Any]) -> None:
    """Merge a delta into an accumulated object, as the SDK's stream helper does."""
    for key, value in delta.items():
        if value is None:
            continue
        current = into.get(key)
        if current is None or key in _SET_KEYS:
            # Copy containers: the chunk belongs to the caller, who may still send it on.
            if isinstance(value, dict):
                into[key] = {}
                _merge(into[key], value)
            elif isinstance(value, list):
                into[key] = list(value)
            else:
                into[key] = value
        elif isinstance(current, str) and isinstance(value, str):
            into[key] = current + value
        elif isinstance(current, dict) and isinstance(value, dict):
            _merge(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            current.extend(value)
        else:
            into[key] = value


class _ChoiceState:
    """What one choice (one `index`) has accumulated so far."""

    __slots__ = (
        "annotations",
        "audio",
        "content",
        "extra",
        "extra_delta",
        "finish_reason",
        "function_call",
        "index",
        "logprobs_content",
        "logprobs_refusal",
        "refusal",
        "saw_logprobs",
        "tool_calls",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        # None until a string fragment arrives: a stream of only tool calls keeps `content: null`.
        self.content: list[str] | None = None
        self.refusal: list[str] | None = None
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.function_call: dict[str, Any] | None = None
        self.annotations: list[Any] | None = None
        self.audio: dict[str, Any] | None = None
        self.extra_delta: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self.saw_logprobs = False
        self.logprobs_content: list[Any] | None = None
        self.logprobs_refusal: list[Any] | None = None
        self.finish_reason: str | None = None

    def add(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if delta:
            self._add_delta(delta)
        logprobs = choice.get("logprobs")
        if logprobs is not None:
            self._add_logprobs(logprobs)
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None:
            self.finish_reason = finish_reason
        if not _CHOICE_KEYS.issuperset(choice):
            # Vendor extras on the choice (vLLM's `stop_reason`, `token_ids`).
            _merge(self.extra, {k: v for k, v in choice.items() if k not in _CHOICE_KEYS})

    def _add_delta(self, delta: dict[str, Any]) -> None:
        content = delta.get("content")
        if isinstance(content, str):
            if self.content is None:
                self.content = []
            self.content.append(content)
        refusal = delta.get("refusal")
        if isinstance(refusal, str):
            if self.refusal is None:
                self.refusal = []
            self.refusal.append(refusal)
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            for call in tool_calls:
                self._add_tool_call(call)
        function_call = delta.get("function_call")
        if function_call:
            if self.function_call is None:
                self.function_call = {}
            _merge(self.function_call, function_call)
        annotations = delta.get("annotations")
        if annotations:
            if self.annotations is None:
                self.annotations = []
            self.annotations.extend(annotations)
        audio = delta.get("audio")
        if audio:
            if self.audio is None:
                self.audio = {}
            _merge(self.audio, audio)
        if not _DELTA_KEYS.issuperset(delta):
            _merge(self.extra_delta, {k: v for k, v in delta.items() if k not in _DELTA_KEYS})

    def _add_tool_call(self, call: dict[str, Any]) -> None:
        index = call.get("index", len(self.tool_calls))
        current = self.tool_calls.get(index)
        if current is None:
            current = self.tool_calls[index] = {}
        _merge(current, call)

    def _add_logprobs(self, logprobs: dict[str, Any]) -> None:
        self.saw_logprobs = True
        content = logprobs.get("content")
        if content is not None:
            if self.logprobs_content is None:
                self.logprobs_content = []
            self.logprobs_content.extend(content)
        refusal = logprobs.get("refusal")
        if refusal is not None:
            if self.logprobs_refusal is None:
                self.logprobs_refusal = []
            self.logprobs_refusal.extend(refusal)

    def result(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if self.content is None else "".join(self.content),
            "refusal": None if self.refusal is None else "".join(self.refusal),
            # Always a list, as in OpenAI's non-streamed messages.
            "annotations": self.annotations if self.annotations is not None else [],
        }
        if self.tool_calls:
            message["tool_calls"] = [
                _tool_call(self.tool_calls[index]) for index in sorted(self.tool_calls)
            ]
        if self.function_call is not None:
            message["function_call"] = {
                "name": self.function_call.get("name", ""),
                "arguments": self.function_call.get("arguments", ""),
            }
        if self.audio is not None:
            message["audio"] = self.audio
        message.update(self.extra_delta)
        logprobs = None
        if self.saw_logprobs:
            logprobs = {"content": self.logprobs_content, "refusal": self.logprobs_refusal}
        choice: dict[str, Any] = {
            "index": self.index,
            "message": message,
            "logprobs": logprobs,
            "finish_reason": self.finish_reason,
        }
        choice.update(self.extra)
        return choice


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """A merged tool-call delta as a message tool call: `index` dropped, the shape filled in."""
    result = {key: value for key, value in call.items() if key != "index"}
    result.setdefault("id", "")
    call_type = result.setdefault("type", "function")
    if call_type == "function":
        function = result.setdefault("function", {})
        function.setdefault("name", "")
        function.setdefault("arguments", "")
    return result


class ChatCompletionAccumulator:
    """Builds the `chat.completion` object that a sequence of chunks adds up to.

    Feed every chunk in order with `add`; `result()` may be called at any point. Top-level
    fields come from the chunks: `id`, `created` and `model` from the first one that has
    them, `system_fingerprint`, `service_tier` and `usage` from the last non-null value
    (present in the result only when some chunk had the key). Vendor keys at the top of a
    chunk (`obfuscation`, ...) are not kept.
    """

    __slots__ = ("_choices", "_top")

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceState] = {}
        self._top: dict[str, Any] = {}

    def add(self, chunk: ChatCompletionChunk) -> None:
        top = self._top
        if not top:
            top["id"] = chunk.get("id", "")
            top["created"] = chunk.get("created", 0)
        if top.get("model") is None and chunk.get("model") is not None:
            top["model"] = chunk["model"]
        for key in ("usage", "service_tier", "system_fingerprint"):
            if key in chunk:
                value = chunk[key]
                if value is not None or key not in top:
                    top[key] = value
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _ChoiceState(index)
            delta = choice.get("delta")
            if (
                type(delta) is dict
                and len(delta) == 1
                and type(text := delta.get("content")) is str
                and choice.get("finish_reason") is None
                and choice.get("logprobs") is None
                and _CHOICE_KEYS.issuperset(choice)
            ):
                # Most chunks: a piece of text, nothing else (what `add` would do with it).
                if state.content is None:
                    state.content = [text]
                else:
                    state.content.append(text)
            else:
                state.add(cast(dict[str, Any], choice))

    def result(self) -> ChatCompletion:
        top = self._top
        completion: dict[str, Any] = {
            "id": top.get("id", ""),
            "object": "chat.completion",
            "created": top.get("created", 0),
            "model": top.get("model") or "",
            "choices": [self._choices[index].result() for index in sorted(self._choices)],
        }
        for key in ("usage", "service_tier", "system_fingerprint"):
            if key in top:
                completion[key] = top[key]
        return cast(ChatCompletion, completion)
