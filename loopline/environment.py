"""The SDK for writing environments: typed tools, scenarios with setup and evaluation.

An environment's state is a pydantic model. Loopline keeps it in the trace store between
activities, so a worker restart between setup, any tool call and evaluation loses nothing.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from loopline.models import EnvironmentInfo, Message, ScenarioInfo, StopReason, ToolInfo

StateT = TypeVar("StateT", bound=BaseModel)
AnyFunction = Callable[..., Any]
FunctionT = TypeVar("FunctionT", bound=AnyFunction)


class ToolError(Exception):
    """Raised by a tool to send the model an error it can act on; the run goes on."""


class ScenarioError(Exception):
    """A scenario broke its contract (a setup that yields no prompt, a reward that is no number)."""


@dataclass(frozen=True)
class ToolContext:
    """What a tool may know about the call; `idempotency_key` is stable across retries."""

    run_id: str
    step: int
    call_id: str

    @property
    def idempotency_key(self) -> str:
        return f"{self.run_id}:{self.step}:{self.call_id}"


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
    """Everything an evaluation may look at once the agent has stopped."""

    args: dict[str, Any]
    state: StateT | None
    answer: str | None
    trajectory: list[Message]
    stop_reason: StopReason


def _signature_model(fn: AnyFunction, name: str, skip: Callable[[Any], bool]) -> type[BaseModel]:
    """A pydantic model of `fn`'s parameters, leaving out those whose annotation `skip`s."""
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        annotation = hints.get(param.name, Any)
        if skip(annotation):
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model: type[BaseModel] = create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
    return model


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema


def _short_validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class Tool:
    """A typed function the agent may call; its JSON schema comes from its signature.

    A parameter annotated with the environment's state model receives the run's state, and
    one annotated `ToolContext` receives the call's context; neither is shown to the model.
    """

    def __init__(
        self, fn: AnyFunction, *, name: str, stop: bool, state_type: type[BaseModel] | None
    ) -> None:
        self.fn = fn
        self.name = name
        self.stop = stop
        self.description = inspect.getdoc(fn) or name
        hints = typing.get_type_hints(fn)
        params = inspect.signature(fn).parameters
        self._state_param = next(
            (p for p in params if state_type is not None and hints.get(p) is state_type), None
        )
        self._context_param = next((p for p in params if hints.get(p) is ToolContext), None)
        self.arguments_model = _signature_model(
            fn,
            f"{name}_arguments",
            skip=lambda ann: ann is ToolContext or (state_type is not None and ann is state_type),
        )

    @functools.cached_property
    def _info(self) -> ToolInfo:
        return ToolInfo(
            name=self.name,
            description=self.description,
            parameters=_schema(self.arguments_model),
            stop=self.stop,
        )

    def info(self) -> ToolInfo:
        """What the model is shown; built once, since generating the schema is costly."""
        return self._info.model_copy(deep=True)

    async def invoke(
        self, arguments: dict[str, Any], state: BaseModel | None, context: ToolContext
    ) -> str:
        try:
            parsed = self.arguments_model.model_validate(arguments)
        except ValidationError as error:
            raise ToolError(
                f"invalid arguments for {self.name}: {_short_validation_message(error)}"
            ) from error
        kwargs = dict(parsed)
        if self._state_param:
            kwargs[self._state_param] = state
        if self._context_param:
            kwargs[self._context_param] = context
        return _render(await _maybe_await(self.fn(**kwargs)))


def _render(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(result, default=str)


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
        self.description = description or inspect.getdoc(fn) or name
        self.style: Literal["functions", "generator"] = (
            "generator" if inspect.isasyncgenfunction(fn) else "functions"
        )
        self.args_model = _signature_model(fn, f"{name}_args", skip=lambda _: False)
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
            args_schema=_schema(self.args_model),
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
        return _as_setup(self.name, await _maybe_await(self.fn(**self._parsed_args(args))))

    async def run_evaluation(self, outcome: Outcome[Any]) -> Reward:
        if self.style == "generator":
            return await self._evaluate_generator(outcome)
        if self._evaluate is None:
            raise ScenarioError(f"scenario {self.name} has no @{self.name}.evaluation")
        return _as_reward(self.name, await _maybe_await(self._evaluate(outcome)))

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


class Environment:
    """A named bundle of tools and scenarios, with an optional state model."""

    def __init__(
        self,
        name: str,
        *,
        description: str = "",
        state: type[BaseModel] | None = None,
        system_prompt: str | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.state_type = state
        self.system_prompt = system_prompt
        self.tools: dict[str, Tool] = {}
        self.scenarios: dict[str, Scenario] = {}
        self._teardown: AnyFunction | None = None

    @typing.overload
    def tool(self, fn: FunctionT) -> FunctionT: ...

    @typing.overload
    def tool(
        self, *, name: str | None = None, stop: bool = False
    ) -> Callable[[FunctionT], FunctionT]: ...

    def tool(
        self, fn: FunctionT | None = None, *, name: str | None = None, stop: bool = False
    ) -> FunctionT | Callable[[FunctionT], FunctionT]:
        """Register a tool. `stop=True` ends the episode; its result becomes the answer."""

        def register(function: FunctionT) -> FunctionT:
            tool = Tool(
                function, name=name or function.__name__, stop=stop, state_type=self.state_type
            )
            self.tools[tool.name] = tool
            return function

        return register(fn) if fn is not None else register

    @typing.overload
    def scenario(self, fn: AnyFunction) -> Scenario: ...

    @typing.overload
    def scenario(
        self, *, name: str | None = None, description: str = ""
    ) -> Callable[[AnyFunction], Scenario]: ...

    def scenario(
        self, fn: AnyFunction | None = None, *, name: str | None = None, description: str = ""
    ) -> Scenario | Callable[[AnyFunction], Scenario]:
        """Register a scenario (see `Scenario` for the two styles)."""

        def register(function: AnyFunction) -> Scenario:
            scenario = Scenario(
                function, name=name or function.__name__, description=description or None
            )
            self.scenarios[scenario.name] = scenario
            return scenario

        return register(fn) if fn is not None else register

    def on_teardown(self, fn: FunctionT) -> FunctionT:
        """Register a hook run at teardown (also after cancel or failure) with (state, run_id)."""
        self._teardown = fn
        return fn

    async def run_teardown(self, state: BaseModel | None, run_id: str) -> None:
        if self._teardown is not None:
            await _maybe_await(self._teardown(state, run_id))

    @staticmethod
    def setup(prompt: str, state: BaseModel | None = None) -> Setup:
        return Setup(prompt=prompt, state=state)

    @staticmethod
    def reward(value: float, **details: Any) -> Reward:
        return Reward(value=value, details=details)

    def load_state(self, raw: dict[str, Any] | None) -> BaseModel | None:
        if self.state_type is None or raw is None:
            return None
        return self.state_type.model_validate(raw)

    def info(self) -> EnvironmentInfo:
        return EnvironmentInfo(
            name=self.name,
            description=self.description,
            stateful=self.state_type is not None,
            scenarios=[scenario.info() for scenario in self.scenarios.values()],
            tools=[tool.info() for tool in self.tools.values()],
        )
