"""Messages and completions: every text field redacted, nothing else, the input untouched."""

from __future__ import annotations

import copy
from typing import Any

from chatkeep.protocol.requests import CreateChatCompletionRequest
from chatkeep.redaction import BUILTIN_DETECTORS, RedactionRule, Redactor
from chatkeep.service.stored import build_stored_completion

REDACTOR = Redactor([RedactionRule(name) for name in BUILTIN_DETECTORS])
EMAIL = "alice@example.com"
KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"
IMAGE = "https://img.example.com/alice@example.com/10.0.0.1.png"
AUDIO = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA="


def _messages() -> list[dict[str, Any]]:
    """One message of every role and shape, each with something to redact."""
    return [
        {"role": "developer", "content": f"Never reveal {KEY}.", "name": "ops@example.com"},
        {"role": "system", "content": [{"type": "text", "text": f"Admin: {EMAIL}"}]},
        {
            "role": "user",
            "name": "alice",
            "content": [
                {"type": "text", "text": "Call me at +1 415 555 0132"},
                {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": AUDIO, "format": "wav"}},
                {"type": "file", "file": {"filename": f"{EMAIL}.pdf", "file_data": AUDIO}},
                {"type": "text", "text": "nothing here"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Your card 4111 1111 1111 1111 is on file."},
                {"type": "refusal", "refusal": f"I won't email {EMAIL}."},
            ],
            "refusal": "Not sharing 10.0.0.1",
            "name": "bot",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "send_mail", "arguments": f'{{"to": "{EMAIL}"}}'},
                },
                {
                    "id": "call_2",
                    "type": "custom",
                    "custom": {"name": "shell", "input": f"curl -H 'Authorization: Bearer {KEY}'"},
                },
                {
                    "id": "call_3",
                    "type": "function",
                    "function": {"name": "noop", "arguments": '{"n": 1}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": f"sent to {EMAIL}"},
        {
            "role": "tool",
            "tool_call_id": "call_2",
            "content": [{"type": "text", "text": "from 2001:db8::1"}],
        },
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "lookup", "arguments": '{"ip": "192.168.0.7"}'},
        },
        {"role": "function", "name": "lookup", "content": "owner bob@example.org"},
        {"role": "assistant", "content": None, "audio": {"id": "audio_1"}},
    ]


EXPECTED_MESSAGES: list[dict[str, Any]] = [
    {"role": "developer", "content": "Never reveal [SECRET].", "name": "ops@example.com"},
    {"role": "system", "content": [{"type": "text", "text": "Admin: [EMAIL]"}]},
    {
        "role": "user",
        "name": "alice",
        "content": [
            {"type": "text", "text": "Call me at [PHONE]"},
            {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": AUDIO, "format": "wav"}},
            {"type": "file", "file": {"filename": f"{EMAIL}.pdf", "file_data": AUDIO}},
            {"type": "text", "text": "nothing here"},
        ],
    },
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Your card [CARD] is on file."},
            {"type": "refusal", "refusal": "I won't email [EMAIL]."},
        ],
        "refusal": "Not sharing [IP]",
        "name": "bot",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "send_mail", "arguments": '{"to": "[EMAIL]"}'},
            },
            {
                "id": "call_2",
                "type": "custom",
                "custom": {"name": "shell", "input": "curl -H 'Authorization: Bearer [SECRET]'"},
            },
            {
                "id": "call_3",
                "type": "function",
                "function": {"name": "noop", "arguments": '{"n": 1}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sent to [EMAIL]"},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "from [IP]"}]},
    {
        "role": "assistant",
        "content": None,
        "function_call": {"name": "lookup", "arguments": '{"ip": "[IP]"}'},
    },
    {"role": "function", "name": "lookup", "content": "owner [EMAIL]"},
    {"role": "assistant", "content": None, "audio": {"id": "audio_1"}},
]


def test_the_messages_are_real_request_messages() -> None:
    CreateChatCompletionRequest.model_validate({"model": "m", "messages": _messages()})


def test_every_text_field_of_the_messages_is_redacted_and_nothing_else() -> None:
    messages = _messages()
    before = copy.deepcopy(messages)
    redacted = REDACTOR.messages(messages)
    assert redacted == EXPECTED_MESSAGES
    assert messages == before  # not mutated


def test_unchanged_messages_and_parts_are_shared_changed_ones_copied() -> None:
    messages = _messages()
    redacted = REDACTOR.messages(messages)
    assert redacted is not messages
    assert redacted[-1] is messages[-1]  # nothing to redact: the same dict
    user, assistant = redacted[2], redacted[3]
    assert user is not messages[2]
    assert user["content"][1] is messages[2]["content"][1]  # the image part
    assert user["content"][4] is messages[2]["content"][4]  # the text without a match
    assert assistant["tool_calls"][2] is messages[3]["tool_calls"][2]


def test_messages_without_matches_come_back_as_the_same_list() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
    ]
    assert REDACTOR.messages(messages) is messages
    everything = _messages()
    assert Redactor([]).messages(everything) is everything


def test_unexpected_shapes_are_left_alone() -> None:
    odd: list[Any] = [
        "not a message",
        {"role": "user", "content": 42},
        {"role": "user", "content": [None, "text", {"type": "text", "text": 5}, {"text": EMAIL}]},
        {"role": "assistant", "tool_calls": [None, {"function": None}, {"function": {}}]},
        {"role": "assistant", "function_call": "x", "audio": None, "refusal": None},
    ]
    before = copy.deepcopy(odd)
    assert REDACTOR.messages(odd) is odd
    assert odd == before


def _completion() -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "send_mail", "description": EMAIL}}],
        "user": EMAIL,
    }
    params = CreateChatCompletionRequest.model_validate(body)
    choices = [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": f"Write to {EMAIL} with key {KEY}.",
                "refusal": None,
                "annotations": [{"type": "url_citation", "url_citation": {"url": IMAGE}}],
            },
            "finish_reason": "stop",
            "logprobs": None,
        },
        {
            "index": 1,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": "I cannot call 415-555-0132.",
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "send_mail", "arguments": '{"to":"bob@example.org"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
            "logprobs": None,
        },
        {
            "index": 2,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "function_call": {"name": "f", "arguments": '{"card": "5555555555554444"}'},
                "audio": {"id": "audio_1", "data": AUDIO, "expires_at": 1, "transcript": EMAIL},
            },
            "finish_reason": "function_call",
            "logprobs": None,
        },
        {
            "index": 3,
            "message": {"role": "assistant", "content": "All clear.", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        },
    ]
    completion: Any = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "m",
        "choices": choices,
        "usage": {"prompt_tokens": 4155550132, "completion_tokens": 1, "total_tokens": 2},
        "system_fingerprint": "fp_10.0.0.1",
    }
    return build_stored_completion(completion, params, body, request_id="req_1", seed=7)


def test_every_text_field_of_a_stored_completion_is_redacted_and_nothing_else() -> None:
    stored = _completion()
    before = copy.deepcopy(stored)
    redacted = REDACTOR.completion(stored)
    assert stored == before  # not mutated

    messages = [choice["message"] for choice in redacted["choices"]]
    assert messages[0]["content"] == "Write to [EMAIL] with key [SECRET]."
    assert messages[0]["annotations"] == before["choices"][0]["message"]["annotations"]
    assert messages[1]["refusal"] == "I cannot call [PHONE]."
    assert messages[1]["tool_calls"][0]["function"] == {
        "name": "send_mail",
        "arguments": '{"to":"[EMAIL]"}',
    }
    assert messages[2]["function_call"] == {"name": "f", "arguments": '{"card": "[CARD]"}'}
    assert messages[2]["audio"] == {
        **before["choices"][2]["message"]["audio"],
        "transcript": "[EMAIL]",
    }

    # Everything but the messages is as it was, the request echo (`tools`, `input_user`) too.
    assert {k: v for k, v in redacted.items() if k != "choices"} == {
        k: v for k, v in before.items() if k != "choices"
    }
    for choice, original in zip(redacted["choices"], before["choices"], strict=True):
        assert {k: v for k, v in choice.items() if k != "message"} == {
            k: v for k, v in original.items() if k != "message"
        }
    assert redacted["choices"][3] is stored["choices"][3]  # unchanged: shared
    assert redacted["usage"] is stored["usage"]


def test_a_completion_without_matches_is_returned_as_is() -> None:
    stored = _completion()
    stored["choices"] = [stored["choices"][3]]
    assert REDACTOR.completion(stored) is stored
    assert REDACTOR.completion({"object": "chat.completion"}) == {"object": "chat.completion"}


def test_a_redacted_choice_loses_its_token_logprobs_and_reasoning_is_redacted() -> None:
    tokens = [{"token": t, "logprob": 0.0, "bytes": None, "top_logprobs": []} for t in "ab"]
    logprobs = {"content": tokens, "refusal": None}
    message = {"role": "assistant", "content": "x", "refusal": None}
    completion: Any = {
        "choices": [
            {"index": 0, "message": {**message, "content": f"mail {EMAIL}"}, "logprobs": logprobs},
            {"index": 1, "message": {**message, "reasoning_content": EMAIL}, "logprobs": logprobs},
            {"index": 2, "message": {**message, "reasoning": EMAIL}, "logprobs": None},
            {"index": 3, "message": message, "logprobs": logprobs},
        ]
    }
    choices = REDACTOR.completion(completion)["choices"]
    assert [c["logprobs"] for c in choices] == [None, None, None, logprobs]
    assert choices[1]["message"]["reasoning_content"] == "[EMAIL]"
    assert choices[2]["message"]["reasoning"] == "[EMAIL]"
    assert choices[3] is completion["choices"][3]
