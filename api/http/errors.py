"""The one mapping from service errors to HTTP answers, and the shape of every refusal.

A refusal names what to fix in FastAPI's own validation shape (`detail[0].loc/msg/type`)
for fields, or as a `detail` string otherwise. Inputs echoed back never carry secrets, and
an answer can always be written (a number like NaN in the input comes back as text).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from api.services.errors import (
    Busy,
    Conflict,
    Forbidden,
    Invalid,
    ServiceError,
    TooLarge,
    Unauthenticated,
    Unavailable,
)

STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Invalid, 422),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (Conflict, 409),
    (TooLarge, 413),
    (Busy, 429),
    (Unavailable, 503),
    # The service layer's NotFound and the trace store's not-found errors alike.
    (LookupError, 404),
)
# A callback's headers may carry the receiver's credentials, its secret signs deliveries.
SECRET_FIELDS = frozenset({"api_key", "provider_api_keys", "headers", "secret"})
MASK = "**********"
# What every route may answer besides its own result: the statuses of ERROR_STATUSES.
ERROR_DESCRIPTIONS = {
    400: "The body is not JSON the route takes (task-runs: any invalid input)",
    401: "No valid credential",
    403: "The credential does not grant this",
    404: "No such record in the caller's project",
    409: "The request contradicts what exists",
    413: "The request is larger than the configured limit",
    422: "A field is invalid; detail[0].loc points at it",
    429: "The project has as many runs in flight as it may; retry after Retry-After",
    503: "Temporal cannot be reached just now",
}
# A restarted Temporal server answers again within seconds; sooner retries only add load.
RETRY_AFTER_SECONDS = "5"
# Runs in flight end every few seconds: a second is long enough for one to make room.
BUSY_RETRY_AFTER_SECONDS = "1"


def status_of(error: Exception) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500


def problem_detail(loc: Sequence[Any], message: str, kind: str) -> dict[str, Any]:
    # The shape of FastAPI's own validation errors, so clients parse one format.
    return {"detail": [{"loc": list(loc), "msg": message, "type": kind}]}


def error_body(error: Exception) -> dict[str, Any]:
    if isinstance(error, Invalid):
        return problem_detail(error.loc, error.message, "invalid")
    message = error.message if isinstance(error, ServiceError) else str(error)
    return {"detail": message}


def error_response(error: Exception, status: int | None = None) -> JSONResponse:
    headers: dict[str, str] | None = None
    if isinstance(error, Unauthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(error, Unavailable):
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
    elif isinstance(error, Busy):
        headers = {"Retry-After": BUSY_RETRY_AFTER_SECONDS}
    return JSONResponse(error_body(error), status_code=status or status_of(error), headers=headers)


def validation_problems(error: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's validation errors, secrets masked and every value writable as JSON."""
    problems = []
    for item in error.errors():
        item = dict(item)
        if any(part in SECRET_FIELDS for part in item.get("loc", ())):
            item["input"] = MASK
        elif "input" in item:
            item["input"] = _without_secrets(item["input"])
        problems.append(item)
    encoded: list[dict[str, Any]] = _writable(jsonable_encoder(problems))
    return encoded


# A page of its own for a refusal of a request that wants one (the viewer's), else None.
ErrorPage = Callable[[Request, Exception, int], Response | None]


def install_error_handlers(app: FastAPI, error_page: ErrorPage | None = None) -> None:
    def page_for(request: Request, error: Exception, status: int) -> Response | None:
        return None if error_page is None else error_page(request, error, status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> Response:
        page = page_for(request, error, 422)
        if page is not None:
            return page
        return JSONResponse(status_code=422, content={"detail": validation_problems(error)})

    async def _service_error(request: Request, error: Exception) -> Response:
        status = status_of(error)
        return page_for(request, error, status) or error_response(error, status)

    for kind, _status in STATUS:
        app.add_exception_handler(kind, _service_error)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> Response:
        page = page_for(request, error, error.status_code)
        return page or await http_exception_handler(request, error)


def _without_secrets(value: Any) -> Any:
    """FastAPI echoes the rejected input; keys sent with it must not come back."""
    if isinstance(value, dict):
        return {
            key: MASK if key in SECRET_FIELDS else _without_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


def _writable(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers come back as their text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _writable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_writable(item) for item in value]
    return value
