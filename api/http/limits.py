"""What a request body may be, checked before any route sees it: at most
LOOPLINE_MAX_REQUEST_BYTES (a 413 beyond; large data goes through artifact uploads, which
have their own limit), and JSON whose numbers JSON can hold (NaN, Infinity and 1e400 are
a 422, not a value that cannot be stored or answered).

Pure ASGI, so event streams and artifact uploads pass through unbuffered.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Uploads streamed as the raw body: PUT /v1/runs/{run_id}/artifacts/{name}.
STREAMED = re.compile(r"^/v1/runs/[^/]+/artifacts/.+$")
# Only bodies with one of these can hold a number JSON lacks; the others skip the parse.
SUSPECT = re.compile(rb"NaN|Infinity|[0-9][eE][+]?[0-9]{3}|[0-9]{300}")
JSON_TYPES = ("application/json", "+json")


class BodyLimits:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _streamed(scope):
            await self._app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            await _refuse(send, 413, self._too_large())
            return
        body, more = await self._read(receive)
        if more:
            await _refuse(send, 413, self._too_large())
            return
        problem = _number_problem(scope, body)
        if problem is not None:
            await _refuse(send, 422, [{"loc": ["body"], "msg": problem, "type": "json_invalid"}])
            return
        await self._app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> tuple[bytes, bool]:
        """The body, and whether it went on beyond the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_bytes:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False

    def _too_large(self) -> str:
        return (
            f"the request body is larger than {self._max_bytes:,} bytes "
            "(LOOPLINE_MAX_REQUEST_BYTES): send large data as an artifact "
            "(PUT /v1/runs/{run_id}/artifacts/{name}) or as something a scenario fetches"
        )


def _streamed(scope: Scope) -> bool:
    return scope["method"] == "PUT" and STREAMED.match(scope["path"]) is not None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _number_problem(scope: Scope, body: bytes) -> str | None:
    content_type = (_header(scope, b"content-type") or "application/json").lower()
    if not body or not any(kind in content_type for kind in JSON_TYPES):
        return None
    return number_problem(body)


def number_problem(body: bytes) -> str | None:
    """What makes a JSON body's numbers ones JSON cannot hold, if anything."""
    if SUSPECT.search(body) is None:
        return None
    try:
        json.loads(body, parse_constant=_not_a_number, parse_float=_finite)
    except _NotFinite as error:
        return f"numbers must be finite: {error} is not a JSON number"
    except json.JSONDecodeError:
        return None  # not JSON: the route says what is wrong with it
    except ValueError as error:  # an integer of thousands of digits
        return f"a number is too long: {error}"
    return None


class _NotFinite(ValueError):
    pass


def _not_a_number(token: str) -> Any:
    raise _NotFinite(token)


def _finite(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NotFinite(token)
    return value


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _refuse(send: Send, status: int, detail: object) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
