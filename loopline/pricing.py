"""What model calls cost: a built-in price table that a deployment extends or overrides."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field, TypeAdapter

from loopline.models import SCRIPTED_MODEL, Usage

PER_MILLION = 1_000_000


class Price(BaseModel):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


# List prices in USD per million tokens, from the providers' pricing pages (2025).
# Reasoning tokens are billed as output tokens and are already counted in them.
BUILT_IN_PRICES: dict[str, Price] = {
    SCRIPTED_MODEL: Price(input=0, output=0),
    "gpt-4o": Price(input=2.50, output=10.00),
    "gpt-4o-mini": Price(input=0.15, output=0.60),
    "gpt-4.1": Price(input=2.00, output=8.00),
    "gpt-4.1-mini": Price(input=0.40, output=1.60),
    "gpt-4.1-nano": Price(input=0.10, output=0.40),
    "gpt-5": Price(input=1.25, output=10.00),
    "gpt-5-mini": Price(input=0.25, output=2.00),
    "gpt-5-nano": Price(input=0.05, output=0.40),
    "o1": Price(input=15.00, output=60.00),
    "o3": Price(input=2.00, output=8.00),
    "o3-mini": Price(input=1.10, output=4.40),
    "o4-mini": Price(input=1.10, output=4.40),
    "claude-opus-4": Price(input=15.00, output=75.00),
    "claude-opus-4-1": Price(input=15.00, output=75.00),
    "claude-sonnet-4": Price(input=3.00, output=15.00),
    "claude-sonnet-4-5": Price(input=3.00, output=15.00),
    "claude-haiku-4-5": Price(input=1.00, output=5.00),
    "claude-3-5-haiku": Price(input=0.80, output=4.00),
}

_PRICE_FILE = TypeAdapter(dict[str, Price])


class PriceTable:
    def __init__(self, prices: dict[str, Price]) -> None:
        self._prices = prices
        # Longest names first, so that "gpt-4o-mini-2024-07-18" is priced as gpt-4o-mini.
        self._by_length = sorted(prices, key=len, reverse=True)

    @classmethod
    def load(cls, overrides_file: str | None) -> PriceTable:
        prices = dict(BUILT_IN_PRICES)
        if overrides_file:
            prices.update(_PRICE_FILE.validate_python(json.loads(Path(overrides_file).read_text())))
        return cls(prices)

    def price_of(self, model: str) -> Price | None:
        """The price of `model` or of the longest known name it starts with (dated versions)."""
        name = model.rsplit("/", 1)[-1]
        if name in self._prices:
            return self._prices[name]
        for known in self._by_length:
            if name.startswith(known):
                return self._prices[known]
        return None

    def priced(self, model: str, usage: Usage) -> Usage:
        price = self.price_of(model)
        if price is None:
            return usage.model_copy(update={"unpriced_calls": usage.model_calls})
        return usage.model_copy(
            update={
                "prompt_cost": usage.prompt_tokens * price.input / PER_MILLION,
                "output_cost": usage.completion_tokens * price.output / PER_MILLION,
            }
        )
