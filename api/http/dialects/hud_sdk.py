"""What hud-python's SDK (0.5.x) calls besides the REST API: the hub's MCP endpoint, where
`connect_hub` reaches an environment by its Environment-Name header, and the trace's enter
and exit. Served under /hud and /hud/v1, like the rest of the hud dialect.

The SDK names a scenario `<its Environment's name>:<scenario>`, and an `Environment()` made
without a name is called `environment`: the hub lists each scenario under both names.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response

from api.http.deps import Svc, Who
from api.http.mcp import SESSION_HEADER, Surface, end_session, serve
from api.http.routing import DocumentedRoute
from api.services.mcp_sessions import Session
from loopline.models import RUN_ID_PATTERN

PREFIX = "/hud"
# The name hud-python gives an Environment() that is not named.
SDK_DEFAULT_NAME = "environment"
MCP_PATH = "/v3/mcp"
ENVIRONMENT_HEADER = "environment-name"

routes = APIRouter(tags=["dialect: hud"], route_class=DocumentedRoute)
EnvironmentName = Annotated[
    str, Header(alias=ENVIRONMENT_HEADER, min_length=1, description="What connect_hub names.")
]
SessionId = Annotated[str, Header(alias=SESSION_HEADER, min_length=1)]
TraceId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The SDK's trace id.")]


@routes.post(MCP_PATH, summary="The hub's MCP endpoint (HUD_MCP_URL)")
async def hub(request: Request, svc: Svc, who: Who, environment: EnvironmentName) -> Response:
    """Streamable-HTTP MCP for the environment named by the Environment-Name header."""
    session = Session(caller=who, environment=environment, session_id="")
    prefixes = tuple(dict.fromkeys((environment, SDK_DEFAULT_NAME)))
    return await serve(request, svc, Surface(session=session, prefixes=prefixes))


@routes.delete(MCP_PATH, summary="End a hub session", status_code=204, response_class=Response)
async def hub_end(
    svc: Svc, who: Who, environment: EnvironmentName, session_id: SessionId
) -> Response:
    return await end_session(svc, Session(who, environment, session_id))


@routes.post("/trace/{trace_id}/enter", summary="A trace begins (hud.eval)")
async def trace_enter(trace_id: TraceId, svc: Svc, who: Who) -> dict[str, str]:
    """Taken note of: the trace becomes a run when its MCP session picks a scenario."""
    await svc.mcp_sessions.enter_trace(who, trace_id)
    return {"status": "ok"}


@routes.post("/trace/{trace_id}/exit", summary="A trace ends (hud.eval)")
async def trace_exit(trace_id: TraceId, svc: Svc, who: Who) -> dict[str, str]:
    """The trace's run, if it is still live, is evaluated with the answer it has."""
    await svc.mcp_sessions.exit_trace(who, trace_id)
    return {"status": "ok"}


@routes.post("/trace/job/{job_id}/enter", summary="A job of several traces begins")
async def job_enter(
    job_id: Annotated[str, Path(pattern=RUN_ID_PATTERN)], svc: Svc, who: Who
) -> dict[str, str]:
    await svc.mcp_sessions.enter_trace(who, job_id)
    return {"status": "ok"}


router = APIRouter(prefix=PREFIX)
router.include_router(routes)
versioned = APIRouter(prefix=f"{PREFIX}/v1")
versioned.include_router(routes)
