"""A stored completion as the store keeps it: its JSON text and its metadata map's.

A list page is served without decoding what it serves: each item is the stored object's
text with `"metadata": {...}` added before its closing brace, handed to orjson as a
`Fragment` that it writes out as it is. Decoding twenty stored objects and encoding them
again was about a tenth of the server's CPU per list page (bench/README.md).

The splice is used only where it is plainly right: the stored text is one JSON object
(orjson or PostgreSQL's `json` wrote it, and neither adds anything after the brace), and
`"metadata"` occurs nowhere in it, since the current map must be the only one served.
Anything else is decoded and encoded as before, so the fast path changes no answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

_METADATA_KEY = '"metadata":'
# Where the stored text holds this (as a key at any depth, with any spacing before its colon,
# or as a whole string), it is decoded instead: only a top-level key would clash, but the
# cheap test must never let one through.
_METADATA_NAME = '"metadata"'


@dataclass(frozen=True, slots=True)
class StoredText:
    """One stored object's JSON text (without metadata) and its metadata map's JSON text."""

    completion: str
    metadata: str

    def decode(self) -> dict[str, Any]:
        """The stored object as served: the completion with its current metadata map."""
        obj: dict[str, Any] = orjson.loads(self.completion)
        obj["metadata"] = orjson.loads(self.metadata)
        return obj

    def served(self) -> orjson.Fragment | dict[str, Any]:
        """The same object for a response body: the stored text with the metadata map
        spliced in, or, where that is not plainly right, the decoded object."""
        text = self.completion.strip()
        if not (text.startswith("{") and text.endswith("}")) or _METADATA_NAME in text:
            return self.decode()
        body = text[:-1].rstrip()
        joint = "" if body.endswith("{") else ","
        return orjson.Fragment(f"{body}{joint}{_METADATA_KEY}{self.metadata}}}")

    def served_id(self) -> str:
        """The id the object answers to (an imported one's original id)."""
        served: str = orjson.loads(self.completion)["id"]
        return served
