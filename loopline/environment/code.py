"""Running environment code: its signatures as pydantic models, and its sync functions off
the worker's event loop.

Tools, setups, evaluations and teardown hooks written as plain functions run in a thread
pool, so a tool that takes seconds of CPU does not hold up the workflow tasks the worker's
event loop serves. `async def` code runs on the loop: it should await its slow parts, and
offload CPU-heavy work itself with `await asyncio.to_thread(fn, *args)`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

AnyFunction = Callable[..., Any]
# Threads for environment code of one worker process; more sync calls than this wait.
ENVIRONMENT_THREADS = 16
_threads = ThreadPoolExecutor(max_workers=ENVIRONMENT_THREADS, thread_name_prefix="environment")


async def call_environment_code(fn: AnyFunction, *args: Any, **kwargs: Any) -> Any:
    """Call `fn`: a coroutine function on the loop, anything else in a thread; an awaitable
    that a plain function returns is awaited too."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(_threads, functools.partial(fn, *args, **kwargs))
    return await result if inspect.isawaitable(result) else result


@dataclass(frozen=True)
class Documentation:
    """What a docstring says: the description, and each parameter's (Google, NumPy, reST)."""

    description: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)


def documentation(fn: AnyFunction) -> Documentation:
    """The docstring of `fn`, its Args/Returns/Raises sections read out of the description;
    a docstring without such sections is the description as it stands."""
    docstring = inspect.getdoc(fn)
    if not docstring:
        return Documentation()
    parsed = docstring_parser.parse(docstring)
    if not (parsed.params or parsed.many_returns or parsed.raises):
        return Documentation(description=docstring)
    return Documentation(
        description=(parsed.description or "").strip() or None,
        parameters={
            param.arg_name: param.description.strip()
            for param in parsed.params
            if param.description and param.description.strip()
        },
    )


def type_hints(fn: AnyFunction) -> dict[str, Any]:
    """The resolved annotations of a function, a method or a callable object."""
    target = fn if inspect.isroutine(fn) or inspect.isclass(fn) else type(fn).__call__
    return typing.get_type_hints(target, include_extras=True)


def annotated_class(annotation: Any) -> type | None:
    """The class an annotation names, through `Annotated[...]` and `Optional[...]`."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        named = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        annotation = named[0] if len(named) == 1 else None
    return annotation if isinstance(annotation, type) else None


def receives(annotation: Any, provided: type | None) -> bool:
    """Whether a parameter so annotated takes a `provided` instance (a subclass counts)."""
    named = annotated_class(annotation)
    # BaseModel and object name every state: a parameter so annotated is the model's.
    if provided is None or named is None or named in (object, BaseModel):
        return False
    try:
        return issubclass(provided, named)
    except TypeError:  # a Protocol that is not runtime-checkable names no class to check
        return False


def signature_model(
    fn: AnyFunction,
    name: str,
    skip: Callable[[Any], bool],
    descriptions: Mapping[str, str] | None = None,
) -> type[BaseModel]:
    """A pydantic model of `fn`'s parameters, leaving out those whose annotation `skip`s;
    `descriptions` (from the docstring) describe the parameters whose annotation does not."""
    hints = type_hints(fn)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        annotation = hints.get(param.name, Any)
        if skip(annotation):
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        described = (descriptions or {}).get(param.name)
        if described and not isinstance(default, FieldInfo) and not _described(annotation):
            default = Field(default, description=described)
        fields[param.name] = (annotation, default)
    model: type[BaseModel] = create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
    return model


def _described(annotation: Any) -> bool:
    return FieldInfo.from_annotation(annotation).description is not None


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    return schema


def short_validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
