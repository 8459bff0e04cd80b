"""Realistic create requests for the UI's tests and screenshots: a support chat, a tool-using
agent turn, a question about an image, a translation asked for three choices with logprobs,
and the XSS payloads that must show as text. Each is sent through the official client."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=\"document.title='pwned'\">"
REMOTE_IMAGE = "https://images.example.com/receipts/4711.png"


def tiny_png(rgb: tuple[int, int, int] = (11, 98, 196), size: int = 24) -> str:
    """A data URL of a small one-colour PNG, made here (no file, no network)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * size
    raw = chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
    raw += chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b"")
    png = b"\x89PNG\r\n\x1a\n" + raw
    return "data:image/png;base64," + base64.b64encode(png).decode()


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


def support_chat() -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are Acme's support assistant. Be brief."},
            {"role": "user", "content": "My invoice for November shows two charges."},
            {
                "role": "assistant",
                "content": "Sorry about that! Could you give me the invoice number?",
            },
            {"role": "user", "content": "It's INV-2026-1187. Can you refund the duplicate?"},
        ],
        "metadata": {"team": "support", "env": "prod", "customer": "c_1187"},
    }


def agent_turn() -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "Answer with the tools you have."},
            {"role": "user", "content": "Do I need an umbrella in Lisbon and in Oslo today?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_lisbon",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city": "Lisbon", "unit": "c"}',
                        },
                    },
                    {
                        "id": "call_oslo",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_lisbon", "content": '{"rain_mm": 0, "t": 19}'},
            {"role": "tool", "tool_call_id": "call_oslo", "content": '{"rain_mm": 6, "t": 3}'},
            {"role": "user", "content": "So, umbrella or not?"},
        ],
        "tools": [WEATHER_TOOL],
        "metadata": {"team": "agents", "env": "staging"},
    }


def image_question() -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What colour is this square? And the receipt?"},
                    {"type": "image_url", "image_url": {"url": tiny_png()}},
                    {"type": "image_url", "image_url": {"url": REMOTE_IMAGE}},
                ],
            }
        ],
        "metadata": {"team": "vision", "env": "prod"},
    }


def translation_choices() -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Translate 'good morning' into Portuguese."}],
        "n": 3,
        "logprobs": True,
        "top_logprobs": 2,
        "temperature": 0.7,
        "metadata": {"team": "i18n", "env": "dev"},
    }


def xss_payloads() -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"{XSS_SCRIPT} and {XSS_IMG}"}],
        "metadata": {"team": XSS_SCRIPT, "note": XSS_IMG},
    }


def all_requests() -> list[dict[str, Any]]:
    return [support_chat(), agent_turn(), image_question(), translation_choices(), xss_payloads()]
