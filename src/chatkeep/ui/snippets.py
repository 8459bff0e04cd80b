""" "Copy as": a stored completion as JSON, and its request again as `curl` and as Python
calling the official client, so that a conversation seen in the UI can be replayed.

The key is never written out: the snippets read it from `OPENAI_API_KEY`.
"""

from __future__ import annotations

import pprint
from typing import Any

from chatkeep.ui.views import pretty_json

# Parameters a stored completion echoes, and the value that means "not sent".
_DEFAULTS: dict[str, Any] = {
    "temperature": 1.0,
    "top_p": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
_SENT_WHEN_SET = ("tools", "tool_choice", "response_format", "seed")


def replay_request(stored: dict[str, Any], messages: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The create request that asks for this completion again (stored, with its metadata)."""
    body: dict[str, Any] = {"model": stored.get("model"), "messages": messages or []}
    for name, default in _DEFAULTS.items():
        value = stored.get(name)
        if value is not None and value != default:
            body[name] = value
    for name in _SENT_WHEN_SET:
        if stored.get(name) is not None:
            body[name] = stored[name]
    if len(stored.get("choices") or []) > 1:
        body["n"] = len(stored["choices"])
    if stored.get("input_user"):
        body["user"] = stored["input_user"]
    if stored.get("metadata"):
        body["metadata"] = stored["metadata"]
    body["store"] = True
    return body


def curl_snippet(base_url: str, body: dict[str, Any]) -> str:
    data = pretty_json(body).replace("'", "'\\''")  # inside a single-quoted shell word
    return (
        f"curl {base_url}/v1/chat/completions \\\n"
        '  -H "Authorization: Bearer $OPENAI_API_KEY" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{data}'"
    )


def python_snippet(base_url: str, body: dict[str, Any]) -> str:
    arguments = []
    for name, value in body.items():
        shown = pprint.pformat(value, indent=1, width=80, sort_dicts=False)
        arguments.append(f"    {name}=" + shown.replace("\n", "\n    ") + ",")
    return (
        "from openai import OpenAI\n\n"
        f'client = OpenAI(base_url="{base_url}/v1")  # the key from OPENAI_API_KEY\n\n'
        "completion = client.chat.completions.create(\n" + "\n".join(arguments) + "\n)\n"
        "print(completion.choices[0].message.content)"
    )
