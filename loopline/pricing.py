"""What model calls cost: a deployment's own prices first, then genai-prices (a maintained
table of providers' list prices, shipped with the package, never fetched at run time),
then a small built-in table for dated and suffixed names genai-prices does not match."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import genai_prices
from pydantic import BaseModel, Field, TypeAdapter

from loopline.models import SCRIPTED_MODEL, Provider, Usage

PER_MILLION = 1_000_000


class Price(BaseModel):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


# The last resort, in USD per million tokens (providers' pages, 2025), matched by prefix.
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


# Loopline's providers as genai-prices names them; custom servers are not looked up.
GENAI_PROVIDERS: dict[Provider, str | None] = {
    Provider.openai: "openai",
    Provider.azure_openai: "azure",
    Provider.anthropic: "anthropic",
    Provider.aws_bedrock: "aws",
    Provider.gcp: "google",
    Provider.custom: None,
}


@dataclass(frozen=True)
class _Names:
    """Prices by name, and by the longest known name a dated version starts with."""

    prices: dict[str, Price]

    def find(self, name: str) -> Price | None:
        if name in self.prices:
            return self.prices[name]
        for known in sorted(self.prices, key=len, reverse=True):
            if name.startswith(known):
                return self.prices[known]
        return None


class PriceTable:
    def __init__(self, overrides: dict[str, Price], fallback: dict[str, Price]) -> None:
        self._overrides = _Names(overrides)
        self._fallback = _Names(fallback)

    @classmethod
    def load(cls, overrides_file: str | None) -> PriceTable:
        overrides: dict[str, Price] = {SCRIPTED_MODEL: Price(input=0, output=0)}
        if overrides_file:
            text = Path(overrides_file).read_text()
            overrides.update(_PRICE_FILE.validate_python(json.loads(text)))
        return cls(overrides, BUILT_IN_PRICES)

    def price_of(self, model: str) -> Price | None:
        """The deployment's price of `model`, else the built-in fallback's, each also for
        dated versions of a known name."""
        name = model.rsplit("/", 1)[-1]
        return self._overrides.find(name) or self._fallback.find(name)

    def priced(self, model: str, usage: Usage, provider: Provider = Provider.custom) -> Usage:
        """`usage` with its cost: the deployment's price, genai-prices' (for the call's own
        token counts, so tiered prices hold), or the fallback's; else counted unpriced."""
        name = model.rsplit("/", 1)[-1]
        price = self._overrides.find(name)
        if price is None and (costs := _maintained_costs(name, provider, usage)) is not None:
            return usage.model_copy(update={"prompt_cost": costs[0], "output_cost": costs[1]})
        price = price or self._fallback.find(name)
        if price is None:
            return usage.model_copy(update={"unpriced_calls": usage.model_calls})
        return usage.model_copy(
            update={
                "prompt_cost": usage.prompt_tokens * price.input / PER_MILLION,
                "output_cost": usage.completion_tokens * price.output / PER_MILLION,
            }
        )


def _maintained_costs(name: str, provider: Provider, usage: Usage) -> tuple[float, float] | None:
    """genai-prices' input and output cost of one call; None for a model it does not know or
    a self-hosted server (`custom`), which has no list price."""
    provider_id = GENAI_PROVIDERS.get(provider)
    if provider_id is None:
        return None
    try:
        calculation = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens
            ),
            model_ref=name,
            provider_id=provider_id,
        )
    except LookupError:
        return None
    return float(calculation.input_price), float(calculation.output_price)
