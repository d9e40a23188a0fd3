"""A question-answering environment: a small reference book, rewards that check the answer.

Its scenarios use the async-generator style (`yield setup`, `answer = yield`,
`yield reward`); see `loopline.environment.Scenario` for what is re-run at evaluation.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

from pydantic import Field

from loopline import Environment, Reward, Setup, ToolError

CAPITALS = {
    "france": "Paris",
    "japan": "Tokyo",
    "kenya": "Nairobi",
    "peru": "Lima",
    "canada": "Ottawa",
    "australia": "Canberra",
}

trivia = Environment(
    "trivia",
    description="Answer questions with the help of a small reference book.",
    system_prompt="Answer with the help of the tools, then give the answer in one sentence.",
)


@trivia.tool
def lookup(topic: str) -> str:
    """Look a country up in the reference book."""
    capital = CAPITALS.get(topic.strip().lower())
    if capital is None:
        raise ToolError(f"the book has no entry for {topic!r}; it knows {', '.join(CAPITALS)}")
    return f"{topic.strip().title()}: capital city {capital}."


@trivia.tool
def calculator(a: float, b: float, operation: Annotated[str, Field(pattern="^[-+*/]$")]) -> str:
    """Compute `a operation b` for one of + - * /."""
    if operation == "/" and b == 0:
        raise ToolError("division by zero")
    results = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}
    return f"{results[operation]:g}"


@trivia.tool(stop=True)
def submit_answer(answer: str) -> str:
    """Give the final answer and end the episode."""
    return answer


@trivia.scenario(description="Name the capital city of a country.")
async def capital(
    country: Annotated[str, Field(min_length=2, max_length=60)],
) -> AsyncGenerator[Setup | Reward | None, str]:
    expected = CAPITALS.get(country.lower())
    yield trivia.setup(f"What is the capital city of {country}?")
    answer = yield None
    correct = expected is not None and expected.lower() in answer.lower()
    yield trivia.reward(1.0 if correct else 0.0, expected=expected, answer=answer)


@trivia.scenario(description="Compute the total price of several items.")
async def total_price(
    unit_price: float, quantity: Annotated[int, Field(ge=1, le=10_000)]
) -> AsyncGenerator[Setup | Reward | None, str]:
    expected = unit_price * quantity
    yield trivia.setup(f"What do {quantity} items at {unit_price:g} each cost in total?")
    answer = yield None
    correct = f"{expected:g}" in answer
    yield trivia.reward(1.0 if correct else 0.0, expected=f"{expected:g}", answer=answer)
