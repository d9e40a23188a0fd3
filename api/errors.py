"""Errors of the service layer and the HTTP answers they become."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from loopline.agents import AgentNotFoundError
from loopline.catalog import BatchNotFoundError, TasksetNotFoundError
from loopline.store import RunNotFoundError


class TaskNotFoundError(LookupError):
    """No task by that reference in the caller's project (404)."""


class InvalidRequestError(Exception):
    """A request that is well-formed JSON but asks for something that cannot be (422)."""

    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = list(loc)
        self.message = message


class ConflictError(Exception):
    """The request contradicts what exists (409)."""


class UnavailableError(Exception):
    """A part Loopline depends on cannot be reached (503)."""


class ArtifactNotFoundError(LookupError):
    """No artifact of that name in the run's manifest (404)."""


class TooLargeError(Exception):
    """The request body is larger than the configured limit (413)."""


def problem_detail(loc: list[Any], message: str, kind: str) -> dict[str, Any]:
    # The shape of FastAPI's own validation errors, so clients parse one format.
    return {"detail": [{"loc": loc, "msg": message, "type": kind}]}


# A callback's headers may carry the receiver's credentials, its secret signs deliveries.
SECRET_FIELDS = frozenset({"api_key", "provider_api_keys", "headers", "secret"})


def _without_secrets(value: Any) -> Any:
    """FastAPI echoes the rejected input; keys sent with it must not come back."""
    if isinstance(value, dict):
        return {
            key: "**********" if key in SECRET_FIELDS else _without_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = []
        for item in error.errors():
            item = dict(item)
            if any(part in SECRET_FIELDS for part in item.get("loc", ())):
                item["input"] = "**********"
            elif "input" in item:
                item["input"] = _without_secrets(item["input"])
            errors.append(item)
        return JSONResponse(status_code=422, content=jsonable_encoder({"detail": errors}))

    @app.exception_handler(InvalidRequestError)
    async def _invalid(_: Request, error: InvalidRequestError) -> JSONResponse:
        return JSONResponse(
            status_code=422, content=problem_detail(error.loc, error.message, "invalid")
        )

    @app.exception_handler(AgentNotFoundError)
    @app.exception_handler(TaskNotFoundError)
    @app.exception_handler(RunNotFoundError)
    @app.exception_handler(ArtifactNotFoundError)
    @app.exception_handler(TasksetNotFoundError)
    @app.exception_handler(BatchNotFoundError)
    async def _not_found(_: Request, error: LookupError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(error)})

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, error: ConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(error)})

    @app.exception_handler(TooLargeError)
    async def _too_large(_: Request, error: TooLargeError) -> JSONResponse:
        return JSONResponse(status_code=413, content={"detail": str(error)})

    @app.exception_handler(UnavailableError)
    async def _unavailable(_: Request, error: UnavailableError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(error)})
