"""What more than one dialect needs: bare model names, and the seeds' own error statuses."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from api.batches import BatchService
from api.errors import ConflictError, InvalidRequestError, problem_detail
from loopline.models import SCRIPTED_MODEL, Provider, RunView

RUN_PAGE = 1000

# Model names the hosted products take without a provider, by their family's prefix.
PROVIDER_PREFIXES: tuple[tuple[str, Provider], ...] = (
    ("claude", Provider.anthropic),
    ("gpt", Provider.openai),
    ("chatgpt", Provider.openai),
    ("o1", Provider.openai),
    ("o3", Provider.openai),
    ("o4", Provider.openai),
)


def native_model(name: str) -> str:
    """A product's bare model name (`claude-opus-4-5`, `gpt-4o`) as Loopline's
    `provider/model`; names that already say their provider pass through."""
    if "/" in name or name == SCRIPTED_MODEL:
        return name
    for prefix, provider in PROVIDER_PREFIXES:
        if name.lower().startswith(prefix):
            return f"{provider.value}/{name}"
    raise InvalidRequestError(
        ["body", "model"],
        f"cannot tell the provider of model {name!r}: write it as 'provider/model' "
        "(e.g. 'openai/gpt-4o', 'custom/llama-3'); bare names are known for claude-*, gpt-* "
        "and o1/o3/o4 models",
    )


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class BadRequestRoute(APIRoute):
    """For seeds that answer invalid input with 400 (not FastAPI's 422) and a refused
    state change with 400 too; the body keeps Loopline's `detail` shape."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as error:
                problems = [
                    {"loc": item["loc"], "msg": item["msg"], "type": item["type"]}
                    for item in error.errors()
                ]
                return JSONResponse({"detail": problems}, status_code=400)
            except InvalidRequestError as error:
                detail = problem_detail(error.loc, error.message, "invalid")
                return JSONResponse(detail, status_code=400)
            except ConflictError as error:
                return JSONResponse({"detail": str(error)}, status_code=400)

        return handler


async def all_runs(batch_id: str, batches: BatchService) -> list[RunView]:
    """Every run of a batch, in the order the batch starts them."""
    runs: list[RunView] = []
    while page := (await batches.runs(batch_id, RUN_PAGE, len(runs))).runs:
        runs.extend(page)
        if len(page) < RUN_PAGE:
            break
    return runs
