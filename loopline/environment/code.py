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
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

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


def signature_model(fn: AnyFunction, name: str, skip: Callable[[Any], bool]) -> type[BaseModel]:
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
