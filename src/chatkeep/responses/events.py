"""The typed events of a streamed response, made from the chunks of a streamed chat call.

Each event is an SSE frame with an `event:` line naming its type and a `data:` line with
the JSON, numbered by `sequence_number` from 0, in OpenAI's order: `response.created`,
`response.in_progress`; per output item `response.output_item.added`, then for a message
`response.content_part.added`, `response.output_text.delta`s, `response.output_text.done`,
`response.content_part.done`, for a function call `response.function_call_arguments.delta`s
and `.done`; `response.output_item.done`; at last `response.completed` (or
`response.incomplete`), sent by the service once the response is stored. A failure after
the stream began ends it with an `error` event. No `[DONE]` line: the Responses API has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatkeep.errors import ChatkeepError
from chatkeep.protocol.codec import encode_json
from chatkeep.protocol.responses import ChatCompletionChunk
from chatkeep.responses.items import Item, NewId, output_text
from chatkeep.responses.objects import Outcome, Response, message_output

_INCOMPLETE_FINISH = frozenset({"length", "content_filter"})


@dataclass(slots=True)
class _Call:
    item_id: str
    output_index: int
    call_id: str
    name: str
    arguments: str = ""


@dataclass(slots=True)
class _Message:
    item_id: str
    output_index: int
    parts: list[Item] = field(default_factory=list)


class EventWriter:
    """Turns chat chunks into response events; `outcome()` is what they added up to."""

    def __init__(self, new_id: NewId) -> None:
        self._new_id = new_id
        self._sequence = 0
        self._output: list[Item | None] = []
        self._message: _Message | None = None
        self._calls: dict[int, _Call] = {}
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._model = ""
        self._service_tier: str | None = None

    def event(self, kind: str, payload: dict[str, Any]) -> bytes:
        """One SSE frame: `payload` typed `kind` and numbered."""
        data = {"type": kind, **payload, "sequence_number": self._sequence}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + encode_json(data) + b"\n\n"

    def started(self, response: Response) -> bytes:
        return self.event("response.created", {"response": response}) + self.event(
            "response.in_progress", {"response": response}
        )

    def ended(self, response: Response) -> bytes:
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return self.event(kind, {"response": response})

    def failed(self, error: ChatkeepError) -> bytes:
        return self.event(
            "error", {"code": error.code or error.error_type, "message": error.message,
                      "param": error.param},
        )  # fmt: skip

    def chunks(self, batch: list[ChatCompletionChunk]) -> bytes:
        frames: list[bytes] = []
        for chunk in batch:
            self._model = chunk.get("model") or self._model
            self._service_tier = chunk.get("service_tier") or self._service_tier
            if chunk.get("usage"):
                self._usage = dict(chunk["usage"] or {})
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) != 0:
                    continue
                delta: dict[str, Any] = dict(choice.get("delta") or {})
                if delta.get("content"):
                    frames += self._text("output_text", delta["content"])
                if delta.get("refusal"):
                    frames += self._text("refusal", delta["refusal"])
                for call in delta.get("tool_calls") or ():
                    frames += self._call(call)
                if choice.get("finish_reason"):
                    self._finish = choice["finish_reason"]
        return b"".join(frames)

    def _text(self, kind: str, delta: str) -> list[bytes]:
        frames: list[bytes] = []
        message = self._message
        if message is None:
            message = self._message = _Message(self._new_id("msg"), len(self._output))
            self._output.append(None)
            item = message_output(message.item_id, [], "in_progress")
            frames.append(self._added(message.output_index, item))
        where = {"item_id": message.item_id, "output_index": message.output_index}
        if not message.parts or message.parts[-1]["type"] != kind:
            if message.parts:
                frames += self._part_done(message)
            part = output_text("") if kind == "output_text" else {"type": kind, "refusal": ""}
            message.parts.append(part)
            where["content_index"] = len(message.parts) - 1
            frames.append(self.event("response.content_part.added", {**where, "part": part}))
        part = message.parts[-1]
        where["content_index"] = len(message.parts) - 1
        if kind == "output_text":
            part["text"] += delta
            frames.append(
                self.event("response.output_text.delta", {**where, "delta": delta, "logprobs": []})
            )
        else:
            part["refusal"] += delta
            frames.append(self.event("response.refusal.delta", {**where, "delta": delta}))
        return frames

    def _call(self, delta: dict[str, Any]) -> list[bytes]:
        frames = self._close_message()
        index = delta.get("index", 0)
        function = delta.get("function") or {}
        call = self._calls.get(index)
        if call is None:
            call = _Call(
                self._new_id("fc"), len(self._output), delta.get("id") or "",
                function.get("name") or "",
            )  # fmt: skip
            self._calls[index] = call
            self._output.append(None)
            frames.append(self._added(call.output_index, self._call_item(call, "in_progress")))
        pieces = function.get("arguments") or ""
        if pieces:
            call.arguments += pieces
            frames.append(
                self.event(
                    "response.function_call_arguments.delta",
                    {"item_id": call.item_id, "output_index": call.output_index, "delta": pieces},
                )
            )
        return frames

    def close(self) -> bytes:
        """The `.done` events of every item still open, when the chat stream has ended."""
        frames = self._close_message()
        status = self._status()
        for call in self._calls.values():
            where = {"item_id": call.item_id, "output_index": call.output_index}
            frames.append(
                self.event(
                    "response.function_call_arguments.done",
                    {**where, "name": call.name, "arguments": call.arguments},
                )
            )
            item = self._call_item(call, status)
            self._output[call.output_index] = item
            frames.append(self._item_done(call.output_index, item))
        self._calls = {}
        return b"".join(frames)

    def outcome(self) -> Outcome:
        if not self._output:  # an empty answer is still a message, as the plain API has it
            self._output.append(
                message_output(self._new_id("msg"), [output_text("")], self._status())
            )
        return Outcome(
            output=[item for item in self._output if item is not None],
            finish_reason=self._finish,
            usage=self._usage,
            model=self._model,
            service_tier=self._service_tier,
        )

    def _status(self) -> str:
        return "incomplete" if self._finish in _INCOMPLETE_FINISH else "completed"

    def _close_message(self) -> list[bytes]:
        message = self._message
        if message is None:
            return []
        self._message = None
        frames = self._part_done(message)
        item = message_output(message.item_id, message.parts, self._status())
        self._output[message.output_index] = item
        frames.append(self._item_done(message.output_index, item))
        return frames

    def _part_done(self, message: _Message) -> list[bytes]:
        index = len(message.parts) - 1
        part = message.parts[index]
        where = {"item_id": message.item_id, "output_index": message.output_index,
                 "content_index": index}  # fmt: skip
        if part["type"] == "output_text":
            done = self.event(
                "response.output_text.done", {**where, "text": part["text"], "logprobs": []}
            )
        else:
            done = self.event("response.refusal.done", {**where, "refusal": part["refusal"]})
        return [done, self.event("response.content_part.done", {**where, "part": part})]

    def _call_item(self, call: _Call, status: str) -> Item:
        return {
            "id": call.item_id,
            "type": "function_call",
            "status": status,
            "call_id": call.call_id,
            "name": call.name,
            "arguments": call.arguments,
        }

    def _added(self, output_index: int, item: Item) -> bytes:
        return self.event(
            "response.output_item.added", {"output_index": output_index, "item": item}
        )

    def _item_done(self, output_index: int, item: Item) -> bytes:
        return self.event("response.output_item.done", {"output_index": output_index, "item": item})
