"""FastAPI dependencies: the services the app runs with, and the caller of each request.

The credential comes from `Authorization: Bearer ...` or `X-API-KEY`; routes that stream
also take a connection token as `?token=` (browsers' EventSource cannot set headers). What
the caller may do is for the services to say.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from api.services import Services
from api.services.access import Caller
from api.services.errors import Unauthenticated

# Far beyond any real page, and within the 64-bit integers the databases store.
MAX_POSITION = 1_000_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_POSITION, description="Items to skip.")]
AfterSeq = Annotated[int, Query(ge=0, le=MAX_POSITION, description="Only events with a larger seq")]


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def header_credential(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    # The agents API (and clients written for it) send the key as X-API-KEY.
    return request.headers.get("x-api-key", "").strip() or None


async def get_caller(request: Request) -> Caller:
    return await get_services(request).access.authenticate(header_credential(request))


async def get_stream_caller(
    request: Request,
    token: Annotated[
        str | None, Query(description="A connection token, for clients that cannot set headers.")
    ] = None,
) -> Caller:
    credential = header_credential(request)
    access = get_services(request).access
    if credential is not None or token is None:
        return await access.authenticate(credential)
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise Unauthenticated(
            "?token= is taken by event streams only (Accept: text/event-stream); send the "
            "credential in the Authorization header"
        )
    return await access.authenticate(token, in_url=True)


Svc = Annotated[Services, Depends(get_services)]
Who = Annotated[Caller, Depends(get_caller)]
StreamWho = Annotated[Caller, Depends(get_stream_caller)]
