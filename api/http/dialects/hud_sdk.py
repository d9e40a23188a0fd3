"""What hud-python's SDK (0.5.x) calls besides the REST API: the hub's MCP endpoint, where
`connect_hub` reaches an environment by its Environment-Name header, and the trace's enter
and exit. Served under /hud and /hud/v1, like the rest of the hud dialect.

The SDK names a scenario `<its Environment's name>:<scenario>`, and an `Environment()` made
without a name is called `environment`: the hub lists each scenario under both names.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from api.http.deps import Svc, Who
from api.http.mcp import SESSION_HEADER, Surface, end_session, no_stream, serve
from api.http.routing import DocumentedRoute
from api.services.mcp_sessions import Session

PREFIX = "/hud"
# The name hud-python gives an Environment() that is not named.
SDK_DEFAULT_NAME = "environment"
MCP_PATH = "/v3/mcp"
ENVIRONMENT_HEADER = "environment-name"

routes = APIRouter(tags=["dialect: hud"], route_class=DocumentedRoute)
EnvironmentName = Annotated[str | None, Header(alias=ENVIRONMENT_HEADER)]
SessionId = Annotated[str | None, Header(alias=SESSION_HEADER)]


@routes.post(MCP_PATH, summary="The hub's MCP endpoint (HUD_MCP_URL)")
async def hub(
    request: Request, svc: Svc, who: Who, environment: EnvironmentName = None
) -> Response:
    """Streamable-HTTP MCP for the environment named by the Environment-Name header."""
    if not environment:
        return _no_environment()
    session = Session(caller=who, environment=environment, session_id="")
    prefixes = tuple(dict.fromkeys((environment, SDK_DEFAULT_NAME)))
    return await serve(request, svc, Surface(session=session, prefixes=prefixes))


@routes.get(MCP_PATH, include_in_schema=False)
async def hub_stream() -> Response:
    return no_stream()


@routes.delete(MCP_PATH, summary="End a hub session")
async def hub_end(
    svc: Svc, who: Who, environment: EnvironmentName = None, session_id: SessionId = None
) -> Response:
    if not environment:
        return _no_environment()
    return await end_session(svc, Session(who, environment, session_id or ""))


@routes.post("/trace/{trace_id}/enter", summary="A trace begins (hud.eval)")
async def trace_enter(trace_id: str, svc: Svc, who: Who) -> dict[str, str]:
    """Taken note of: the trace becomes a run when its MCP session picks a scenario."""
    await svc.mcp_sessions.enter_trace(who, trace_id)
    return {"status": "ok"}


@routes.post("/trace/{trace_id}/exit", summary="A trace ends (hud.eval)")
async def trace_exit(trace_id: str, svc: Svc, who: Who) -> dict[str, str]:
    """The trace's run, if it is still live, is evaluated with the answer it has."""
    await svc.mcp_sessions.exit_trace(who, trace_id)
    return {"status": "ok"}


@routes.post("/trace/job/{job_id}/enter", summary="A job of several traces begins")
async def job_enter(job_id: str, svc: Svc, who: Who) -> dict[str, str]:
    await svc.mcp_sessions.enter_trace(who, job_id)
    return {"status": "ok"}


def _no_environment() -> JSONResponse:
    return JSONResponse(
        {"detail": "name the environment in the Environment-Name header (connect_hub does)"},
        400,
    )


router = APIRouter(prefix=PREFIX)
router.include_router(routes)
versioned = APIRouter(prefix=f"{PREFIX}/v1")
versioned.include_router(routes)
