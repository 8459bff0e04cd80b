"""JSON decoding is exact and refuses what no answer could carry, on both decoders."""

from __future__ import annotations

import pytest

from chatkeep.backends.upstream_faults import decode_answer as _loads
from chatkeep.protocol.codec import load_json

BIG = "123456789012345678901234567890"  # past 64 bits: the standard library's decoder


def test_long_integers_stay_exact() -> None:
    assert load_json(f'{{"seed": {BIG}}}'.encode()) == {"seed": int(BIG)}


@pytest.mark.parametrize("decode", [load_json, _loads], ids=["request", "upstream"])
@pytest.mark.parametrize("prefix", ["", f'"n": {BIG}, '], ids=["orjson", "stdlib"])
def test_an_unpaired_surrogate_is_refused(decode: object, prefix: str) -> None:
    with pytest.raises(ValueError):
        decode(("{" + prefix + '"s": "a\\ud800"}').encode())  # type: ignore[operator]
    # A pair is text: it decodes on both paths.
    paired = decode(("{" + prefix + '"s": "\\ud83c\\udf0d"}').encode())  # type: ignore[operator]
    assert paired["s"] == "🌍"
