"""Errors of the service layer and the HTTP answers they become."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from loopline.store import RunNotFoundError


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


def _detail(loc: list[Any], message: str, kind: str) -> dict[str, Any]:
    # The shape of FastAPI's own validation errors, so clients parse one format.
    return {"detail": [{"loc": loc, "msg": message, "type": kind}]}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidRequestError)
    async def _invalid(_: Request, error: InvalidRequestError) -> JSONResponse:
        return JSONResponse(status_code=422, content=_detail(error.loc, error.message, "invalid"))

    @app.exception_handler(RunNotFoundError)
    async def _not_found(_: Request, error: RunNotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(error)})

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, error: ConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(error)})

    @app.exception_handler(UnavailableError)
    async def _unavailable(_: Request, error: UnavailableError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(error)})
