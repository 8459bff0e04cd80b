"""Stored completions of every shape an export must carry, made through the official client
(echo model): plain with metadata, `n = 2`, an image content part, a forced tool call, a
conversation that already holds tool calls and their results, a developer message, and an
answer cut by `max_completion_tokens` (finish_reason `length`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openai

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
IMAGE_URL = "https://example.com/cat.png"
TOOL_TURNS: list[dict[str, Any]] = [
    {"role": "user", "content": "weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_paris",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_rome",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_paris", "content": "18 C, sunny"},
    {"role": "tool", "tool_call_id": "call_rome", "content": "24 C, clear"},
    {"role": "user", "content": "so where is it warmer"},
]


@dataclass(frozen=True)
class Made:
    """The ids of what `make_completions` stored, by shape, in creation order."""

    plain: str
    two_choices: str
    image: str
    tool_call: str
    tool_turns: str
    developer: str
    cut: str

    def all(self) -> list[str]:
        return [self.plain, self.two_choices, self.image, self.tool_call, self.tool_turns,
                self.developer, self.cut]  # fmt: skip


def make_completions(client: openai.OpenAI, model: str = "gpt-4o") -> Made:
    def create(messages: list[dict[str, Any]], **kwargs: Any) -> str:
        completion = client.chat.completions.create(
            model=model, messages=messages, store=True, **kwargs
        )
        return completion.id

    return Made(
        plain=create(
            [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hello"}],
            metadata={"team": "search", "env": "prod"},
        ),
        two_choices=create([{"role": "user", "content": "pick one", "name": "ada"}], n=2),
        image=create(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this"},
                        {"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": "low"}},
                    ],
                }
            ],
            metadata={"env": "dev"},
        ),
        tool_call=create(
            [{"role": "user", "content": "weather in Oslo"}],
            tools=[WEATHER],
            tool_choice="required",
        ),
        tool_turns=create(TOOL_TURNS, tools=[WEATHER]),
        developer=create(
            [
                {"role": "developer", "content": "Answer in French."},
                {"role": "user", "content": "hi"},
            ]
        ),
        cut=create(
            [{"role": "user", "content": "a long answer of many words"}],
            max_completion_tokens=2,
            metadata={"env": "prod"},
        ),
    )
