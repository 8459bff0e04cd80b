"""`StoredText.served`: the stored text with the metadata map spliced in, which must always
serve what decoding and encoding again serves, and must fall back where a splice would not."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from chatkeep.protocol.codec import encode_json
from chatkeep.store.stored_text import StoredText

COMPLETION = {
    "object": "chat.completion",
    "id": "chatcmpl-1",
    "created": 1,
    "seed": -(2**63),
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    "choices": [{"index": 0, "message": {"role": "assistant", "content": 'é \u2028 "q" {}'}}],
}


def served_bytes(stored: StoredText) -> bytes:
    return orjson.dumps({"data": [stored.served()]})


def decoded_bytes(stored: StoredText) -> bytes:
    return orjson.dumps({"data": [stored.decode()]})


@pytest.mark.parametrize(
    ("completion", "metadata", "spliced"),
    [
        (orjson.dumps(COMPLETION).decode(), '{"team":"a","n":"1"}', True),
        (orjson.dumps(COMPLETION).decode(), "{}", True),
        ("{}", '{"k":"v"}', True),  # an empty object takes no comma
        ('{ "id": "chatcmpl-2" }\n', '{"k":"v"}', True),  # PostgreSQL json keeps spacing
        ('{"id":"chatcmpl-3","metadata":{"old":"x"}}', '{"new":"y"}', False),
        # Quoted inside a string, the name's quotes are escaped: no clash, spliced.
        ('{"id":"chatcmpl-4","note":"\\"metadata\\": no"}', '{"k":"v"}', True),
        # A key at any depth, with any spacing, or the name as a whole string: decoded.
        ('{"id":"chatcmpl-5","tools":[{"metadata":{}}]}', '{"k":"v"}', False),
        ('{"id":"chatcmpl-6", "metadata" : {"old":"x"}}', '{"new":"y"}', False),
        ('{"id":"chatcmpl-7","tags":["metadata"]}', '{"k":"v"}', False),
    ],
)
def test_served_is_what_decoding_serves(completion: str, metadata: str, spliced: bool) -> None:
    stored = StoredText(completion, metadata)

    served = stored.served()

    assert isinstance(served, orjson.Fragment) is spliced
    assert orjson.loads(served_bytes(stored)) == orjson.loads(decoded_bytes(stored))
    assert orjson.loads(served_bytes(stored))["data"][0]["metadata"] == orjson.loads(metadata)


def test_a_stored_metadata_key_never_outlives_an_update() -> None:
    stored = StoredText('{"id":"chatcmpl-6","metadata":{"old":"x"}}', '{"new":"y"}')

    body: dict[str, Any] = orjson.loads(served_bytes(stored))

    assert body["data"][0] == {"id": "chatcmpl-6", "metadata": {"new": "y"}}


def test_the_orjson_text_of_a_completion_is_served_byte_for_byte() -> None:
    text = encode_json(COMPLETION).decode()
    stored = StoredText(text, '{"a":"b"}')

    assert served_bytes(stored) == b'{"data":[' + text[:-1].encode() + b',"metadata":{"a":"b"}}]}'
    assert served_bytes(stored) == decoded_bytes(stored)


def test_served_id_is_the_stored_objects_id() -> None:
    assert StoredText('{"object":"chat.completion","id":"chatcmpl-7"}', "{}").served_id() == (
        "chatcmpl-7"
    )
