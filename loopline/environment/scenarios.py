"""Scenarios: a setup (args → prompt and initial state) and an evaluation (outcome → reward)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from loopline.environment.code import (
    AnyFunction,
    call_environment_code,
    documentation,
    json_schema,
    signature_model,
)
from loopline.models import Message, ScenarioInfo, StopReason

StateT = TypeVar("StateT", bound=BaseModel)
FunctionT = TypeVar("FunctionT", bound=AnyFunction)


class ScenarioError(Exception):
    """A scenario broke its contract (a setup that yields no prompt, a reward that is no number)."""


@dataclass
class Setup:
    prompt: str
    state: BaseModel | None = None
    system_prompt: str | None = None
    # Who a simulated user (the run's user_model) plays in multi-turn scenarios.
    user_persona: str | None = None


@dataclass
class Reward:
    value: float
    details: dict[str, Any] = field(default_factory=dict)
    success: bool | None = None

    @property
    def succeeded(self) -> bool:
        return self.success if self.success is not None else self.value >= 1.0


@dataclass
class Outcome(Generic[StateT]):
    """Everything an evaluation may look at once the agent has stopped: also which run it
    is and, for a run of a taskset's task, the task's slug and the taskset (else None)."""

    args: dict[str, Any]
    state: StateT | None
    answer: str | None
    trajectory: list[Message]
    stop_reason: StopReason
    # Empty only in an outcome built by hand (a test of an evaluation).
    run_id: str = ""
    task: str | None = None
    taskset_id: str | None = None


class Scenario:
    """Setup (args → prompt and initial state) plus evaluation (outcome → reward).

    Two styles are accepted:

    * functions: the decorated function is the setup and returns a `Setup` (or a prompt);
      `@scenario.evaluation` registers a function of an `Outcome` returning a `Reward`.
    * generator (as in hud's `@env.scenario()`): an async generator that yields a `Setup`,
      receives the answer from a bare `yield`, then yields a `Reward`. Setup and evaluation
      run in different activities (maybe on different workers), so the generator cannot be
      kept alive: evaluation re-runs it from the start with the same args, re-executing the
      code before the first `yield` and discarding what it yields. That code must be
      idempotent; state that evaluation needs belongs in the environment's state model.
    """

    def __init__(self, fn: AnyFunction, *, name: str, description: str | None) -> None:
        self.fn = fn
        self.name = name
        docs = documentation(fn)
        self.description = description or docs.description or name
        self.style: Literal["functions", "generator"] = (
            "generator" if inspect.isasyncgenfunction(fn) else "functions"
        )
        self.args_model = signature_model(
            fn, f"{name}_args", skip=lambda _: False, descriptions=docs.parameters
        )
        self._evaluate: AnyFunction | None = None

    def evaluation(self, fn: FunctionT) -> FunctionT:
        if self.style == "generator":
            raise ScenarioError(f"scenario {self.name} is a generator: it evaluates itself")
        self._evaluate = fn
        return fn

    def info(self) -> ScenarioInfo:
        return ScenarioInfo(
            name=self.name,
            description=self.description,
            args_schema=json_schema(self.args_model),
            style=self.style,
        )

    def validate_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Checked args, as JSON; raises `ValidationError` saying what to fix."""
        return self.args_model.model_validate(args).model_dump(mode="json")

    def _parsed_args(self, args: dict[str, Any]) -> dict[str, Any]:
        return dict(self.args_model.model_validate(args))

    async def run_setup(self, args: dict[str, Any]) -> Setup:
        if self.style == "generator":
            generator = self.fn(**self._parsed_args(args))
            try:
                return _as_setup(self.name, await generator.__anext__())
            finally:
                await generator.aclose()
        return _as_setup(self.name, await call_environment_code(self.fn, **self._parsed_args(args)))

    async def run_evaluation(self, outcome: Outcome[Any]) -> Reward:
        if self.style == "generator":
            return await self._evaluate_generator(outcome)
        if self._evaluate is None:
            raise ScenarioError(f"scenario {self.name} has no @{self.name}.evaluation")
        return _as_reward(self.name, await call_environment_code(self._evaluate, outcome))

    async def _evaluate_generator(self, outcome: Outcome[Any]) -> Reward:
        generator: AsyncGenerator[Any, Any] = self.fn(**self._parsed_args(outcome.args))
        try:
            await generator.__anext__()
            await generator.asend(None)
            return _as_reward(self.name, await generator.asend(outcome.answer or ""))
        except StopAsyncIteration as error:
            raise ScenarioError(
                f"scenario {self.name} must `yield setup`, then `answer = yield`, "
                "then `yield reward`"
            ) from error
        finally:
            await generator.aclose()


def _as_setup(scenario: str, value: Any) -> Setup:
    if isinstance(value, Setup):
        return value
    if isinstance(value, str):
        return Setup(prompt=value)
    raise ScenarioError(f"scenario {scenario} setup gave {type(value).__name__}, not a Setup")


def _as_reward(scenario: str, value: Any) -> Reward:
    if isinstance(value, Reward):
        return value
    if isinstance(value, bool):
        return Reward(value=1.0 if value else 0.0)
    if isinstance(value, int | float):
        return Reward(value=float(value))
    raise ScenarioError(f"scenario {scenario} evaluation gave {type(value).__name__}, no reward")
