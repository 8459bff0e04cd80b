"""The offline token count the echo backend reports: a tokenizer and the prompt formula.

The tokenizer: a text splits, left to right, into tokens of one of two shapes, so that
joining the tokens gives back the exact text (every code point belongs to exactly one
token, and a token never splits a code point):

- optional leading whitespace, then either a run of word characters (Python's `\\w`:
  letters, digits and `_` in any script, so a run of CJK ideographs is one token) or one
  other character (punctuation, a symbol, one emoji code point);
- whitespace that no such token follows (trailing whitespace) is a token of its own.

So `"Hello, world!  "` is `["Hello", ",", " world", "!", "  "]`: 5 tokens.

The prompt formula is the one OpenAI's cookbook uses with tiktoken for chat models, with
this tokenizer in place of tiktoken: each message costs 3 tokens, plus the tokens of its
role, of its text (string content; text and refusal parts; `refusal`; the name and the
arguments or input of each tool call and of a `function_call`) and of its `name` plus 1;
then 3 more for priming the reply. Tool definitions and response formats are not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

TOKEN_PATTERN = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3


def split_tokens(text: str) -> list[str]:
    """The tokens of `text`; `"".join(split_tokens(text)) == text` always holds."""
    return TOKEN_PATTERN.findall(text)


def count_tokens(text: str) -> int:
    """How many tokens `text` has under the rule in this module's docstring."""
    return sum(1 for _ in TOKEN_PATTERN.finditer(text))


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """The prompt tokens of a request's `messages` (the cookbook formula, see above)."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE + count_tokens(str(message.get("role", "")))
        total += sum(count_tokens(text) for text in message_texts(message))
        name = message.get("name")
        if isinstance(name, str):
            total += count_tokens(name) + TOKENS_PER_NAME
    return total


def message_texts(message: dict[str, Any]) -> Iterator[str]:
    """The texts of one request message that count as prompt tokens (not role or name)."""
    yield from content_texts(message.get("content"))
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        yield refusal
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        # A function call carries name + arguments, a custom tool call name + input.
        body = call.get("function") or call.get("custom") or {}
        for key in ("name", "arguments", "input"):
            value = body.get(key) if isinstance(body, dict) else None
            if isinstance(value, str):
                yield value
    function_call = message.get("function_call")
    if isinstance(function_call, dict):
        for key in ("name", "arguments"):
            value = function_call.get(key)
            if isinstance(value, str):
                yield value


def content_texts(content: Any) -> Iterator[str]:
    """The texts of a message `content`: the string itself, or its text and refusal parts.

    Image, audio and file parts carry no text and count nothing here.
    """
    if isinstance(content, str):
        yield content
        return
    if not isinstance(content, list):
        return
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            yield part["text"]
        elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
            yield part["refusal"]
