"""Prices from the config file: exact names, patterns, cached input, and bad tables refused
with the file, key and line named."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from chatkeep.backends.config_file import ConfigError, load_config
from chatkeep.usage.prices import PriceBook

HEAD = 'default = "echo"\n'


def book(tmp_path: Path, text: str) -> PriceBook:
    path = tmp_path / "chatkeep.toml"
    path.write_text(HEAD + text)
    return PriceBook(load_config(path).prices)


def test_an_exact_name_wins_then_the_first_pattern(tmp_path: Path) -> None:
    prices = book(
        tmp_path,
        '[prices."gpt-*"]\ninput = 1\noutput = 2\n'
        '[prices."gpt-4o*"]\ninput = 3\noutput = 4\n'
        '[prices."gpt-4o"]\ninput = 5\noutput = 6\ncached_input = 0.5\n',
    )
    assert prices.price_for("gpt-4o").input == 5  # type: ignore[union-attr]
    assert prices.price_for("gpt-4o-mini").input == 1  # type: ignore[union-attr]
    assert prices.price_for("llama") is None


def test_cached_input_has_its_own_price_or_the_input_price(tmp_path: Path) -> None:
    prices = book(
        tmp_path,
        "[prices.a]\ninput = 2.5\noutput = 10\ncached_input = 1.25\n"
        "[prices.b]\ninput = 2.5\noutput = 10\n",
    )
    a = prices.cost("a", 1_000_000, 200_000, 100_000)
    assert (a.input, a.cached_input, a.output) == (Decimal("2.0"), Decimal("0.25"), Decimal("1"))
    assert a.total == Decimal("3.25")
    assert prices.cost("b", 1_000_000, 200_000, 0).total == Decimal("2.5")
    # More cached than input (a confused upstream): never a negative uncached count.
    assert prices.cost("b", 10, 50, 0).input == 0
    nothing = prices.cost("unknown", 10**9, 0, 10**9)
    assert nothing.total == 0


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ("[prices.a]\ninput = -1\noutput = 1\n", "prices.a.input"),
        ('[prices.a]\ninput = "1"\noutput = 1\n', "prices.a.input"),
        ("[prices.a]\ninput = 1\n", "prices.a.output"),
        ("[prices.a]\ninput = 1\noutput = 1\ncached = 1\n", "did you mean `cached_input`"),
        ("[prices]\na = 1\n", "prices.a"),
    ],
)
def test_a_bad_price_is_refused_naming_it(tmp_path: Path, table: str, named: str) -> None:
    path = tmp_path / "chatkeep.toml"
    path.write_text(HEAD + table)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.").replace("`", ".")):
        load_config(path)
