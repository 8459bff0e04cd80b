"""Prices per model, from the config file's `[prices."MODEL"]` tables, and what usage costs.

A price is US dollars per million tokens: `input`, `output`, and `cached_input` for the
input tokens the model server reports as cached (`prompt_tokens_details.cached_tokens`;
without it they cost `input`). A table's name is a model name, or an fnmatch pattern
(`gpt-4o-*`): an exact name wins, then the first pattern in file order. A model with no
price costs nothing, and the costs route says so (docs/observability.md).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

MILLION = Decimal(1_000_000)
_PATTERN_CHARACTERS = frozenset("*?[")


class ModelPrice(BaseModel):
    """One `[prices."MODEL"]` table: US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    input: float = Field(ge=0, description="USD per million input tokens.")
    output: float = Field(ge=0, description="USD per million output tokens.")
    cached_input: float | None = Field(
        default=None, ge=0, description="USD per million cached input tokens (default: input)."
    )


@dataclass(frozen=True, slots=True)
class Cost:
    """What a total costs, in USD, split as OpenAI's line items are."""

    input: Decimal
    cached_input: Decimal
    output: Decimal

    @property
    def total(self) -> Decimal:
        return self.input + self.cached_input + self.output


class PriceBook:
    """The prices of a config file; `price_for` finds a model's, or None."""

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        prices = prices or {}
        self._exact = {name: p for name, p in prices.items() if not _is_pattern(name)}
        self._patterns = [(name, p) for name, p in prices.items() if _is_pattern(name)]

    def price_for(self, model: str) -> ModelPrice | None:
        found = self._exact.get(model)
        if found is not None:
            return found
        for pattern, price in self._patterns:
            if fnmatch.fnmatchcase(model, pattern):
                return price
        return None

    def cost(self, model: str, input_tokens: int, cached_tokens: int, output_tokens: int) -> Cost:
        """The cost of these tokens of `model`: zero when it has no price."""
        price = self.price_for(model)
        if price is None:
            return Cost(Decimal(0), Decimal(0), Decimal(0))
        cached = min(cached_tokens, input_tokens)
        cached_rate = price.input if price.cached_input is None else price.cached_input
        return Cost(
            input=_dollars(input_tokens - cached, price.input),
            cached_input=_dollars(cached, cached_rate),
            output=_dollars(output_tokens, price.output),
        )


def _dollars(tokens: int, per_million: float) -> Decimal:
    # Decimal from the float's shortest repr (2.5, not 2.4999...), so sums stay exact.
    return Decimal(tokens) * Decimal(repr(per_million)) / MILLION


def _is_pattern(name: str) -> bool:
    return not _PATTERN_CHARACTERS.isdisjoint(name)
