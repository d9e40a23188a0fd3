"""Tools: typed functions the agent may call, with the JSON schema of their signature."""

from __future__ import annotations

import functools
import inspect
import json
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from loopline.environment.code import (
    AnyFunction,
    call_environment_code,
    json_schema,
    short_validation_message,
    signature_model,
)
from loopline.models import ToolInfo
from workflows.contract.names import tool_idempotency_key


class ToolError(Exception):
    """Raised by a tool to send the model an error it can act on; the run goes on."""


@dataclass(frozen=True)
class ToolContext:
    """What a tool may know about the call; `idempotency_key` is stable across retries."""

    run_id: str
    step: int
    call_id: str

    @property
    def idempotency_key(self) -> str:
        return tool_idempotency_key(self.run_id, self.step, self.call_id)


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
        self.arguments_model = signature_model(
            fn,
            f"{name}_arguments",
            skip=lambda ann: ann is ToolContext or (state_type is not None and ann is state_type),
        )

    @functools.cached_property
    def _info(self) -> ToolInfo:
        return ToolInfo(
            name=self.name,
            description=self.description,
            parameters=json_schema(self.arguments_model),
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
                f"invalid arguments for {self.name}: {short_validation_message(error)}"
            ) from error
        kwargs = dict(parsed)
        if self._state_param:
            kwargs[self._state_param] = state
        if self._context_param:
            kwargs[self._context_param] = context
        return _render(await call_environment_code(self.fn, **kwargs))


def _render(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(result, default=str)
