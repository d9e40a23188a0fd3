"""Tools: typed functions the agent may call, with the JSON schema of their signature."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from loopline.environment.code import (
    AnyFunction,
    call_environment_code,
    documentation,
    json_schema,
    receives,
    short_validation_message,
    signature_model,
    type_hints,
)
from loopline.environment.schemas import (
    ToolSchema,
    ToolSchemaError,
    read_tool_schema,
    schema_problem,
)
from loopline.models import ToolInfo
from workflows.contract.names import tool_idempotency_key

OnError = Literal["rollback", "keep"]
ON_ERROR_CHOICES: tuple[OnError, ...] = ("rollback", "keep")


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
    """A function the agent may call, with the JSON schema the model is shown: its
    signature's, or the one given (`schema=`: an OpenAI or MCP tool, or a bare JSON schema),
    verbatim. Parameter descriptions come from the docstring (Google, NumPy or reST style).

    A parameter annotated with the environment's state model (or a base class of it, maybe
    in `Optional[...]` or `Annotated[...]`) receives the run's state, and one annotated
    `ToolContext` receives the call's context; neither is shown to the model.
    """

    def __init__(
        self,
        fn: AnyFunction,
        *,
        name: str | None,
        stop: bool,
        state_type: type[BaseModel] | None,
        schema: dict[str, Any] | None = None,
        description: str | None = None,
        read_only: bool = False,
        on_error: OnError = "rollback",
    ) -> None:
        given = read_tool_schema(schema) if schema is not None else None
        if on_error not in ON_ERROR_CHOICES:
            raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, not {on_error!r}")
        self.fn = fn
        # Never changes the state: the call neither checks it for changes nor writes it.
        self.read_only = read_only
        # A failed call's state: "rollback" to before the call, or "keep" what it changed.
        self.on_error = on_error
        self.name = _tool_name(fn, name, given)
        self.stop = stop
        docs = documentation(fn)
        declared = given.description if given is not None else None
        self.description = description or declared or docs.description or self.name
        hints = type_hints(fn)
        params = inspect.signature(fn).parameters
        self._state_param = _injected(self.name, params, hints, state_type, "the state")
        self._context_param = _injected(self.name, params, hints, ToolContext, "ToolContext")
        self.arguments_model: type[BaseModel] | None = None
        # The keywords a schema-given tool's function takes; None: any (it has **kwargs).
        self._keywords: set[str] | None = None
        if given is None:
            self.arguments_model = signature_model(
                fn,
                f"{self.name}_arguments",
                skip=lambda ann: receives(ann, ToolContext) or receives(ann, state_type),
                descriptions=docs.parameters,
            )
            self.parameters = json_schema(self.arguments_model)
        else:
            self.parameters = given.parameters
            injected = {p for p in (self._state_param, self._context_param) if p is not None}
            self._keywords = _keywords_fitting(self.name, fn, self.parameters, injected)

    @property
    def uses_state(self) -> bool:
        """Whether the tool is handed the run's state (a parameter of the state model)."""
        return self._state_param is not None

    @functools.cached_property
    def _info(self) -> ToolInfo:
        return ToolInfo(
            name=self.name,
            description=self.description,
            parameters=self.parameters,
            stop=self.stop,
        )

    def info(self) -> ToolInfo:
        """What the model is shown; built once, since generating the schema is costly."""
        return self._info.model_copy(deep=True)

    async def invoke(
        self, arguments: dict[str, Any], state: BaseModel | None, context: ToolContext
    ) -> str:
        kwargs = self._checked(arguments)
        if self._state_param:
            kwargs[self._state_param] = state
        if self._context_param:
            kwargs[self._context_param] = context
        return _render(await call_environment_code(self.fn, **kwargs))

    def _checked(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of the call; what the model must fix raises `ToolError`."""
        if self.arguments_model is not None:
            try:
                return dict(self.arguments_model.model_validate(arguments))
            except ValidationError as error:
                why = short_validation_message(error)
                raise ToolError(f"invalid arguments for {self.name}: {why}") from error
        problem = schema_problem(self.parameters, arguments)
        unknown = sorted(set(arguments) - self._keywords) if self._keywords is not None else []
        if problem is None and unknown:
            takes = ", ".join(sorted(self._keywords or ())) or "none"
            problem = f"unknown arguments {', '.join(unknown)}; {self.name} takes: {takes}"
        if problem is not None:
            raise ToolError(f"invalid arguments for {self.name}: {problem}")
        return dict(arguments)


def _tool_name(fn: AnyFunction, name: str | None, given: ToolSchema | None) -> str:
    declared = given.name if given is not None else None
    if name and declared and name != declared:
        raise ToolSchemaError(f"the tool is named {name!r} but its schema names it {declared!r}")
    found = name or declared or getattr(fn, "__name__", None)
    if not found:
        raise ToolSchemaError(f"{fn!r} has no __name__: give the tool a name")
    return str(found)


def _keywords_fitting(
    tool: str, fn: AnyFunction, parameters: dict[str, Any], injected: set[str]
) -> set[str] | None:
    """The keywords `fn` takes from the model (None: any, it has **kwargs), once checked
    against the schema's properties; a mismatch raises `ToolSchemaError`."""
    params = inspect.signature(fn).parameters.values()
    named = {
        p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    } - injected
    properties = set(parameters.get("properties", {}))
    any_keyword = any(p.kind is p.VAR_KEYWORD for p in params)
    cannot_take = sorted(properties & injected) + (
        [] if any_keyword else sorted(properties - named - injected)
    )
    if cannot_take:
        raise ToolSchemaError(
            f"the schema of {tool} has properties its function cannot take: "
            f"{', '.join(cannot_take)}"
        )
    needed = [
        p.name
        for p in params
        if p.name in named and p.default is p.empty and p.name not in properties
    ]
    if needed:
        raise ToolSchemaError(
            f"the function of {tool} needs {', '.join(needed)}, which its schema does not have"
        )
    return None if any_keyword else named


def _render(result: Any) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(result, default=str)


def _injected(
    tool: str, params: Mapping[str, Any], hints: Mapping[str, Any], provided: type | None, what: str
) -> str | None:
    """The one parameter that receives `provided`; two would leave one without a value."""
    takers = [name for name in params if receives(hints.get(name), provided)]
    if len(takers) > 1:
        raise ToolSchemaError(
            f"tool {tool}: parameters {', '.join(takers)} would all receive {what}; "
            "annotate only one of them with its type"
        )
    return takers[0] if takers else None
