"""An environment: a named bundle of tools and scenarios, with an optional state model."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from loopline.environment.code import AnyFunction, call_environment_code
from loopline.environment.scenarios import Reward, Scenario, Setup
from loopline.environment.schemas import ToolSchemaError
from loopline.environment.tools import OnError, Tool
from loopline.models import EnvironmentInfo

FunctionT = TypeVar("FunctionT", bound=AnyFunction)


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
        self,
        *,
        name: str | None = None,
        stop: bool = False,
        schema: dict[str, Any] | None = None,
        description: str | None = None,
        read_only: bool = False,
        on_error: OnError = "rollback",
    ) -> Callable[[FunctionT], FunctionT]: ...

    def tool(
        self,
        fn: FunctionT | None = None,
        *,
        name: str | None = None,
        stop: bool = False,
        schema: dict[str, Any] | None = None,
        description: str | None = None,
        read_only: bool = False,
        on_error: OnError = "rollback",
    ) -> FunctionT | Callable[[FunctionT], FunctionT]:
        """Register a tool. `stop=True` ends the episode; its result becomes the answer.
        `schema=` (see `add_tool`) is what the model is shown instead of the signature's.

        `read_only=True` promises that the tool never changes the state: a call then neither
        checks it for changes nor writes it (a change made anyway is not saved by the call,
        and may be by a later call on the same worker, whose cached state holds it).

        `on_error` is what becomes of the state when the call fails (a `ToolError` or any
        other exception alike): "rollback" (the default) leaves it as it was before the
        call, "keep" saves what the tool changed before failing, with the error result."""

        def register(function: FunctionT) -> FunctionT:
            self.add_tool(
                function,
                schema,
                name=name,
                description=description,
                stop=stop,
                read_only=read_only,
                on_error=on_error,
            )
            return function

        return register(fn) if fn is not None else register

    def add_tool(
        self,
        fn: AnyFunction,
        schema: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        stop: bool = False,
        read_only: bool = False,
        on_error: OnError = "rollback",
    ) -> Tool:
        """Register an existing callable as a tool. `schema` is an OpenAI function tool
        (`{"type": "function", "function": {"name", "description", "parameters"}}`), an MCP
        tool (`{"name", "description", "inputSchema"}`) or a bare JSON schema of the
        arguments; the model is shown it verbatim, the arguments are checked against it and
        passed as keywords. Without one, the schema comes from the signature. Raises
        `ToolSchemaError` for a schema that cannot be used or a name already taken."""
        tool = Tool(
            fn,
            name=name,
            stop=stop,
            state_type=self.state_type,
            schema=schema,
            description=description,
            read_only=read_only,
            on_error=on_error,
        )
        if tool.name in self.tools:
            raise ToolSchemaError(f"environment {self.name!r} already has a tool {tool.name!r}")
        self.tools[tool.name] = tool
        return tool

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
            await call_environment_code(self._teardown, state, run_id)

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
