"""A stand-in for OpenAI's stored-completions API, for imports: random ids (as OpenAI's
are), list pages in creation order with `limit` and `after`, each completion's messages,
and faults on demand (a 429 with `retry-after`, a 500 that says not to retry)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chatkeep.ids import BASE62


def openai_id() -> str:
    return "chatcmpl-" + "".join(secrets.choice(BASE62) for _ in range(29))


def conversation(n: int, created: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The nth stored completion, as OpenAI's routes show it, and its listed messages."""
    cid = openai_id()
    item = {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"answer {n} zebra{n}",
                            "refusal": None, "annotations": []},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        "service_tier": "default",
        "system_fingerprint": "fp_0123456789",
        "metadata": {"n": str(n)},
        "request_id": f"req_{secrets.token_hex(16)}",
        "seed": 42,
        "temperature": 1.0,
        "top_p": 1.0,
        "tool_choice": None,
        "tools": None,
        "response_format": None,
    }  # fmt: skip
    messages = [
        {"id": f"{cid}-0", "role": "system", "content": "Be brief.", "name": None,
         "content_parts": None},
        {"id": f"{cid}-1", "role": "user", "content": f"question {n}", "name": "ada",
         "content_parts": [{"type": "text", "text": f"question {n}"},
                           {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]},
    ]  # fmt: skip
    return item, messages


@dataclass
class FakeOpenAI:
    """`count` completions created a minute apart from `start`; faults by request number."""

    count: int
    start: int
    items: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    list_requests: list[dict[str, str]] = field(default_factory=list)
    # List-request numbers (from 1) answered 429 once, and from which on all are 500s.
    rate_limited: set[int] = field(default_factory=set)
    broken_from: int | None = None

    def __post_init__(self) -> None:
        for n in range(self.count):
            item, listed = conversation(n, self.start + 60 * n)
            self.items.append(item)
            self.messages[item["id"]] = listed

    async def list_page(self, request: Request) -> JSONResponse:
        params = dict(request.query_params)
        self.list_requests.append(params)
        number = len(self.list_requests)
        if number in self.rate_limited:
            return _error(429, "Rate limit reached.", {"retry-after": "0.2"})
        if self.broken_from is not None and number >= self.broken_from:
            return _error(500, "The server had an error.", {"x-should-retry": "false"})
        limit = int(params.get("limit", "20"))
        items = [i for i in self.items if params.get("model", i["model"]) == i["model"]]
        if "after" in params:
            ids = [item["id"] for item in items]
            items = items[ids.index(params["after"]) + 1 :]
        page = items[:limit]
        return JSONResponse({"object": "list", "data": page,
                             "first_id": page[0]["id"] if page else None,
                             "last_id": page[-1]["id"] if page else None,
                             "has_more": len(items) > limit})  # fmt: skip

    async def list_messages(self, request: Request) -> JSONResponse:
        listed = self.messages.get(request.path_params["cid"])
        if listed is None:
            return _error(404, "No chat completion found.", {})
        return JSONResponse({"object": "list", "data": listed, "first_id": listed[0]["id"],
                             "last_id": listed[-1]["id"], "has_more": False})  # fmt: skip

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.list_page),
                Route("/v1/chat/completions/{cid}/messages", self.list_messages),
            ]
        )


def _error(status: int, message: str, headers: dict[str, str]) -> JSONResponse:
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)
