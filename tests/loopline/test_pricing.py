"""Prices by model name, dated versions, and a deployment's own table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopline.models import Provider, Usage
from loopline.pricing import PriceTable


def test_dated_versions_take_the_longest_matching_name() -> None:
    table = PriceTable.load(None)
    mini = table.price_of("gpt-4o-mini-2024-07-18")
    assert mini is not None and mini.input == 0.15
    full = table.price_of("openai/gpt-4o-2024-08-06")
    assert full is not None and full.input == 2.50
    assert table.price_of("llama-3-70b") is None


def test_a_price_file_overrides_and_extends(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps({"gpt-4o": {"input": 1, "output": 2}, "llama-3": {"input": 0.1, "output": 0.2}})
    )
    table = PriceTable.load(str(prices))
    usage = table.priced(
        "llama-3-70b", Usage(model_calls=1, prompt_tokens=10**6, completion_tokens=10**6)
    )
    assert (usage.prompt_cost, usage.output_cost) == pytest.approx((0.1, 0.2))
    assert usage.cost_usd == pytest.approx(0.3)
    gpt = table.price_of("gpt-4o")
    assert gpt is not None and gpt.input == 1


def test_unknown_models_are_counted_as_unpriced() -> None:
    usage = PriceTable.load(None).priced("mystery", Usage(model_calls=1, prompt_tokens=5))
    assert usage.unpriced_calls == 1 and usage.cost_usd == 0


def test_known_models_are_priced_from_genai_prices_with_their_tiers() -> None:
    table = PriceTable.load(None)
    small = table.priced(
        "claude-sonnet-4-5", Usage(model_calls=1, prompt_tokens=1000), Provider.anthropic
    )
    large = table.priced(
        "claude-sonnet-4-5", Usage(model_calls=1, prompt_tokens=300_000), Provider.anthropic
    )
    assert small.prompt_cost == pytest.approx(1000 * 3 / 1e6)
    # Over 200k tokens of context, the long-context price holds for the whole prompt.
    assert large.prompt_cost > 300_000 * 3 / 1e6 and large.unpriced_calls == 0


def test_a_deployment_price_beats_genai_prices_and_custom_servers_have_none(
    tmp_path: Path,
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"gpt-4o": {"input": 1, "output": 2}}))
    usage = Usage(model_calls=1, prompt_tokens=10**6)
    ours = PriceTable.load(str(prices)).priced("gpt-4o", usage, Provider.openai)
    assert ours.prompt_cost == pytest.approx(1.0)
    served_here = PriceTable.load(None).priced("llama-3.1-8b-instruct", usage, Provider.custom)
    assert served_here.unpriced_calls == 1 and served_here.cost_usd == 0
