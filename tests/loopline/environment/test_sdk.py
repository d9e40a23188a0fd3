"""The environment SDK: schemas from signatures, injected state and context, both styles."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from loopline import Environment, Outcome, Reward, Setup, ToolContext, ToolError
from loopline.environment.scenarios import ScenarioError
from loopline.models import StopReason


class Counter(BaseModel):
    value: int = 0
    keys: list[str] = Field(default_factory=list)


env = Environment("counter", state=Counter)


@env.tool
def add(counter: Counter, context: ToolContext, amount: Annotated[int, Field(ge=1)] = 1) -> int:
    """Add to the counter."""
    counter.value += amount
    counter.keys.append(context.idempotency_key)
    return counter.value


@env.scenario
def count_to(target: int) -> Setup:
    return Setup(prompt=f"count to {target}", state=Counter())


@count_to.evaluation
def _reached(outcome: Outcome[Counter]) -> bool:
    assert outcome.state is not None
    return bool(outcome.state.value == outcome.args["target"])


calls: list[str] = []


@env.scenario(name="echo")
async def echo(word: str) -> AsyncGenerator[Setup | Reward | None, str]:
    calls.append("setup")
    yield env.setup(f"say {word}")
    answer = yield None
    calls.append("evaluate")
    yield env.reward(1.0 if answer == word else 0.0, heard=answer)


def outcome(args: dict[str, object], state: Counter | None, answer: str) -> Outcome[Counter]:
    return Outcome(
        args=args, state=state, answer=answer, trajectory=[], stop_reason=StopReason.answered
    )


def test_tool_schema_comes_from_the_signature_without_injected_parameters() -> None:
    info = env.tools["add"].info()
    assert info.description == "Add to the counter."
    assert info.parameters["properties"] == {
        "amount": {"default": 1, "minimum": 1, "title": "Amount", "type": "integer"}
    }
    assert info.parameters["additionalProperties"] is False


async def test_tool_gets_state_and_context_and_rejects_bad_arguments() -> None:
    counter = Counter()
    context = ToolContext(run_id="r", step=2, call_id="c")
    assert await env.tools["add"].invoke({"amount": 3}, counter, context) == "3"
    assert counter.keys == ["r:2:c"]
    with pytest.raises(ToolError, match="amount: Input should be greater than or equal to 1"):
        await env.tools["add"].invoke({"amount": 0}, counter, context)
    with pytest.raises(ToolError, match="colour: Extra inputs"):
        await env.tools["add"].invoke({"colour": "red"}, counter, context)
    assert counter.value == 3


async def test_function_style_scenario() -> None:
    scenario = env.scenarios["count_to"]
    assert scenario.validate_args({"target": "4"}) == {"target": 4}
    with pytest.raises(ValidationError):
        scenario.validate_args({"goal": 4})
    setup = await scenario.run_setup({"target": 4})
    assert setup.prompt == "count to 4"
    assert (
        await scenario.run_evaluation(outcome({"target": 4}, Counter(value=4), ""))
    ).value == 1.0
    assert (
        await scenario.run_evaluation(outcome({"target": 4}, Counter(value=5), ""))
    ).value == 0.0


async def test_generator_scenario_reruns_its_setup_code_at_evaluation() -> None:
    calls.clear()
    scenario = env.scenarios["echo"]
    assert scenario.style == "generator"
    assert (await scenario.run_setup({"word": "hi"})).prompt == "say hi"
    reward = await scenario.run_evaluation(outcome({"word": "hi"}, None, "hi"))
    assert (reward.value, reward.details) == (1.0, {"heard": "hi"})
    assert calls == ["setup", "setup", "evaluate"]


async def test_broken_scenarios_say_what_is_wrong() -> None:
    broken = Environment("broken")

    @broken.scenario
    async def too_short(x: int) -> AsyncGenerator[Setup | None, str]:
        yield broken.setup("prompt")

    @broken.scenario
    def no_evaluation() -> str:
        return "a prompt"

    with pytest.raises(ScenarioError, match="then `yield reward`"):
        await too_short.run_evaluation(outcome({"x": 1}, None, ""))
    assert (await no_evaluation.run_setup({})).prompt == "a prompt"
    with pytest.raises(ScenarioError, match=r"has no @no_evaluation\.evaluation"):
        await no_evaluation.run_evaluation(outcome({}, None, ""))
    with pytest.raises(ScenarioError, match="evaluates itself"):
        too_short.evaluation(lambda outcome: 1.0)
