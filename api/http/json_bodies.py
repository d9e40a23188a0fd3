"""JSON bodies whatever their Content-Type says.

The seeds' own examples send JSON without a Content-Type, or with the one `curl -d` sets
(application/x-www-form-urlencoded); FastAPI would hand such a body to the route as bytes
and refuse it with a message about dictionaries. A route that takes a JSON body reads any
body as JSON here; a body that is not JSON, or a required body that is missing, is refused
saying to send JSON. Routes that take forms or no body are left alone.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response, params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from api.http.limits import number_problem

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
JSON_TYPE = (b"content-type", b"application/json")
SEND_JSON = "send a JSON object as the body (Content-Type: application/json)"


def takes_json(route: APIRoute) -> bool:
    field = route.body_field
    return field is not None and not isinstance(field.field_info, params.Form)


def reading_json(route: APIRoute, handle: Handler) -> Handler:
    """`handle`, for a route that takes a JSON body, reading the body as JSON."""
    if not takes_json(route):
        return handle
    assert route.body_field is not None
    required = route.body_field.field_info.is_required()

    async def handler(request: Request) -> Response:
        await _as_json(request, required)
        return await handle(request)

    return handler


async def _as_json(request: Request, required: bool) -> None:
    """Mark the request's body as JSON, or refuse it saying what to send instead."""
    body = await request.body()  # kept on the request: the route reads it again
    content_type = _content_type(request)
    if not body.strip():
        if required:
            _refuse(f"the body is empty: {SEND_JSON}")
        return
    if content_type is not None and _is_json(content_type):
        return  # FastAPI parses it, and says so if it is not JSON
    try:
        json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        sent = f"Content-Type {content_type}" if content_type else "no Content-Type"
        _refuse(f"the body is not JSON (sent with {sent}): {SEND_JSON}")
    problem = number_problem(body)
    if problem is not None:
        _refuse(problem)
    # Read from the scope when FastAPI first asks for the headers, after this.
    headers = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"content-type"]
    request.scope["headers"] = [*headers, JSON_TYPE]


def _content_type(request: Request) -> str | None:
    for key, value in request.scope["headers"]:
        if key.lower() == b"content-type":
            return str(value.decode("latin-1"))
    return None


def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _refuse(message: str) -> None:
    raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": message}])
