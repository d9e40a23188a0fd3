"""What more than one dialect needs: the seeds' own error statuses."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.http.errors import error_response, validation_problems
from api.http.routing import DocumentedRoute
from api.services.errors import Conflict, Invalid

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class BadRequestRoute(DocumentedRoute):
    """For seeds that answer invalid input with 400 (not FastAPI's 422) and a refused
    state change with 400 too; the body keeps Loopline's `detail` shape."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as error:
                return JSONResponse({"detail": validation_problems(error)}, status_code=400)
            except (Invalid, Conflict) as error:
                return error_response(error, 400)

        return handler
