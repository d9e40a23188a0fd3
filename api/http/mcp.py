"""Environments over MCP (streamable HTTP), translated to the MCP session service.

`POST` takes one JSON-RPC message and answers it as one JSON response; there is no
server-to-client stream (no `GET`: a 405, which MCP clients take as "none") and `DELETE`
ends the session. The session id that
`initialize` hands out is the run's id, so any API process serves any session, also after
a restart. What each method means for the run is in api/services/mcp_sessions.py:

- prompts: one per scenario, named `environment:scenario`; getting one starts the run;
- tools: the run's offered tools; a call is a step, applied once per idempotency key: the
  `loopline/idempotency_key` of its `_meta` (what Loopline itself sends to MCP servers), else
  the JSON-RPC id with the call's name and arguments (a resent request repeats all three);
  `_hud_submit` (hud-python's) hands in the agent's answer;
- resources: one per scenario, also `environment:scenario`; reading it ends the agent's turn,
  has the run evaluated, and returns the reward.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Annotated, Any

import mcp_types as types
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from api.http.deps import Svc, Who
from api.http.routing import DocumentedRoute
from api.services.errors import Conflict, Invalid, NotFound, Unavailable
from api.services.mcp_sessions import Session, SessionPlan
from loopline.environment.toolservers import META_IDEMPOTENCY_KEY
from loopline.models import MAX_STEPS_LIMIT, EnvironmentInfo, RunStatus, RunView, ToolInfo

SESSION_HEADER = "mcp-session-id"
# Protocol versions this endpoint speaks (the initialize handshake's).
PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
SUBMIT_TOOL = "_hud_submit"
# JSON-RPC error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
REFUSED = -32000

router = APIRouter(tags=["mcp"], route_class=DocumentedRoute)


@dataclass(frozen=True)
class Surface:
    """One MCP endpoint's session and how it names scenarios: `prefixes` are the names
    its prompts and resources take before `:scenario` (the environment's own first)."""

    session: Session
    prefixes: tuple[str, ...]


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@router.post("/v1/environments/{name}/mcp", summary="Serve an environment over MCP")
async def mcp_post(
    name: str,
    request: Request,
    svc: Svc,
    who: Who,
    scenario: Annotated[
        str | None, Query(description="Scenario of a client that gets no prompt.")
    ] = None,
    args: Annotated[str | None, Query(description="Its args, a JSON object.")] = None,
    task: Annotated[
        str | None, Query(description="A taskset task to play: 'taskset:slug'.")
    ] = None,
    max_steps: Annotated[int | None, Query(ge=1, le=MAX_STEPS_LIMIT)] = None,
) -> Response:
    """Streamable-HTTP MCP: the environment's scenarios as prompts and resources, its tools
    as tools. A session is a run whose agent is the client (README: "MCP")."""
    plan = SessionPlan(scenario=scenario, args=_plan_args(args), task=task, max_steps=max_steps)
    # The session id (Mcp-Session-Id) is read per message: initialize has none.
    session = Session(caller=who, environment=name, session_id="", plan=plan)
    return await serve(request, svc, Surface(session=session, prefixes=(name,)))


@router.delete(
    "/v1/environments/{name}/mcp",
    summary="End an MCP session",
    status_code=204,
    response_class=Response,
)
async def mcp_delete(
    name: str,
    svc: Svc,
    who: Who,
    session_id: Annotated[str, Header(alias=SESSION_HEADER, min_length=1)],
) -> Response:
    """The session's run, if still live, is evaluated with the answer it has."""
    return await end_session(svc, Session(caller=who, environment=name, session_id=session_id))


async def end_session(svc: Svc, session: Session) -> Response:
    await svc.mcp_sessions.close(session)
    return Response(status_code=204)


async def serve(request: Request, svc: Svc, surface: Surface) -> Response:
    """Answer one JSON-RPC message (a notification gets 202)."""
    try:
        message = json.loads(await request.body())
    except ValueError as error:
        return _rpc_error(None, PARSE_ERROR, f"the body is not JSON ({error}): send one message")
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        return _rpc_error(None, INVALID_REQUEST, "send one JSON-RPC 2.0 message with a method")
    if "id" not in message:
        return Response(status_code=202)
    request_id = message["id"]
    params = message.get("params") or {}
    if not isinstance(params, dict):
        return _rpc_error(request_id, INVALID_REQUEST, "params is a JSON object")
    method = message["method"]
    session = surface.session
    headers: dict[str, str] = {}
    try:
        if method == "initialize":
            wanted = request.headers.get("trace-id")
            session_id = await svc.mcp_sessions.open(session.caller, session.environment, wanted)
            headers[SESSION_HEADER] = session_id
            result = _initialize(params, session.environment)
        else:
            surface = _in_session(surface, request)
            result = await _dispatch(svc, surface, method, params, request_id)
    except RpcError as error:
        return _rpc_error(request_id, error.code, error.message)
    except NotFound as error:
        if method == "initialize" or not surface.session.session_id:
            return _rpc_error(request_id, INVALID_PARAMS, error.message)
        # MCP: a session the server does not know is a 404; the client starts a new one.
        return JSONResponse(_error_body(request_id, INVALID_PARAMS, error.message), 404)
    except (Invalid, Conflict, Unavailable) as error:
        code = INVALID_PARAMS if isinstance(error, Invalid) else REFUSED
        return _rpc_error(request_id, code, error.message)
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": result}, headers=headers)


def _in_session(surface: Surface, request: Request) -> Surface:
    """The surface with the request's session id: the header, else (a client in stateless
    mode) its trace id."""
    session_id = request.headers.get(SESSION_HEADER) or request.headers.get("trace-id")
    if not session_id:
        raise RpcError(INVALID_REQUEST, f"missing the {SESSION_HEADER} header: initialize first")
    return replace(surface, session=replace(surface.session, session_id=session_id))


async def _dispatch(
    svc: Svc, surface: Surface, method: str, params: dict[str, Any], request_id: Any
) -> dict[str, Any]:
    sessions = svc.mcp_sessions
    session = surface.session
    if method == "ping":
        return {}
    if method == "tools/list":
        tools = await sessions.tools(session)
        return _dump(types.ListToolsResult(tools=[_tool(tool) for tool in tools]))
    if method == "tools/call":
        call = _parsed(types.CallToolRequestParams, params)
        return await _call_tool(svc, surface, call, request_id)
    if method == "prompts/list":
        info = await sessions.environment(session.caller, session.environment)
        return _dump(types.ListPromptsResult(prompts=_prompts(info, surface.prefixes)))
    if method == "prompts/get":
        get = _parsed(types.GetPromptRequestParams, params)
        scenario = _scenario(surface, get.name)
        prompt = await sessions.start(session, scenario, dict(get.arguments or {}))
        return _dump(_prompt_result(scenario, prompt.system, prompt.user))
    if method == "resources/list":
        info = await sessions.environment(session.caller, session.environment)
        return _dump(types.ListResourcesResult(resources=_resources(info, surface.prefixes)))
    if method == "resources/read":
        read = _parsed(types.ReadResourceRequestParams, params)
        _scenario(surface, str(read.uri))
        view = await sessions.finish(session, None)
        return _dump(_evaluation(str(read.uri), view))
    if method == "resources/templates/list":
        return {"resourceTemplates": []}
    raise RpcError(METHOD_NOT_FOUND, f"method {method!r} is not served here")


async def _call_tool(
    svc: Svc, surface: Surface, call: types.CallToolRequestParams, request_id: Any
) -> dict[str, Any]:
    sessions = svc.mcp_sessions
    arguments = dict(call.arguments or {})
    if call.name == SUBMIT_TOOL:
        answer = arguments.get("answer")
        text = answer if isinstance(answer, str) or answer is None else json.dumps(answer)
        view = await sessions.finish(surface.session, text)
        reply = f"answer submitted; the run ended {view.status.value}"
        return _dump(types.CallToolResult(content=[_text(reply)], is_error=False))
    meta: dict[str, Any] = dict(call.meta or {})
    key = meta.get(META_IDEMPOTENCY_KEY)
    if key is None:
        key = _request_key(request_id, call.name, arguments)
    outcome = await sessions.call_tool(surface.session, call.name, arguments, str(key))
    result = types.CallToolResult(content=[_text(outcome.content)], is_error=outcome.is_error)
    return _dump(result)


def _request_key(request_id: Any, name: str, arguments: dict[str, Any]) -> str:
    """A resent request repeats its id, name and arguments; another call never does all three
    (a client restarting its ids after a reconnect makes other calls)."""
    content = json.dumps([request_id, name, arguments], sort_keys=True, default=str)
    return f"rpc-{hashlib.sha256(content.encode()).hexdigest()}"


def _initialize(params: dict[str, Any], environment: str) -> dict[str, Any]:
    wanted = params.get("protocolVersion")
    version = wanted if wanted in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0]
    capabilities = types.ServerCapabilities(
        tools=types.ToolsCapability(list_changed=False),
        prompts=types.PromptsCapability(list_changed=False),
        resources=types.ResourcesCapability(subscribe=False, list_changed=False),
    )
    result = types.InitializeResult(
        protocol_version=version,
        capabilities=capabilities,
        server_info=types.Implementation(name=environment, version="loopline"),
        instructions=(
            "Get a scenario's prompt to start the episode, call the tools, then read the "
            "scenario's resource to have it evaluated (its reward)."
        ),
    )
    return _dump(result)


def _tool(tool: ToolInfo) -> types.Tool:
    return types.Tool(name=tool.name, description=tool.description, input_schema=tool.parameters)


def _prompts(info: EnvironmentInfo, prefixes: tuple[str, ...]) -> list[types.Prompt]:
    prompts = []
    for scenario in info.scenarios:
        required = set(scenario.args_schema.get("required", []))
        arguments = [
            types.PromptArgument(name=name, required=name in required)
            for name in scenario.args_schema.get("properties", {})
        ]
        for prefix in prefixes:
            prompts.append(
                types.Prompt(
                    name=f"{prefix}:{scenario.name}",
                    description=scenario.description or f"Scenario {scenario.name}",
                    arguments=arguments,
                )
            )
    return prompts


def _resources(info: EnvironmentInfo, prefixes: tuple[str, ...]) -> list[types.Resource]:
    return [
        types.Resource(
            name=scenario.name,
            uri=f"{prefix}:{scenario.name}",
            description=f"The evaluation of {scenario.name}: reading it ends the episode",
            mime_type="application/json",
        )
        for scenario in info.scenarios
        for prefix in prefixes
    ]


def _scenario(surface: Surface, name: str) -> str:
    """The scenario a prompt or resource name means: `prefix:scenario`, or a bare name."""
    prefix, colon, scenario = name.rpartition(":")
    if colon and prefix not in surface.prefixes:
        raise RpcError(
            INVALID_PARAMS,
            f"{name!r} is not a scenario of {surface.session.environment!r}: "
            f"use '{surface.prefixes[0]}:<scenario>' (prompts/list names them)",
        )
    return scenario


def _prompt_result(scenario: str, system: str | None, user: str) -> types.GetPromptResult:
    messages = [types.PromptMessage(role="user", content=_text(user))]
    return types.GetPromptResult(description=system or f"Scenario {scenario}", messages=messages)


def _evaluation(uri: str, view: RunView) -> types.ReadResourceResult:
    """hud-python's evaluation result: reward, done, and what the run ended with."""
    failed = view.status is RunStatus.failed
    content = view.error if failed else view.answer
    result = {
        "reward": view.reward if view.reward is not None else 0.0,
        "done": view.status.is_final,
        "content": content,
        "isError": failed,
        "info": {
            "run_id": view.run_id,
            "status": view.status.value,
            "stop_reason": view.stop_reason.value if view.stop_reason else None,
            "success": view.success,
        },
    }
    text = types.TextResourceContents(
        uri=uri, mime_type="application/json", text=json.dumps(result)
    )
    return types.ReadResourceResult(contents=[text])


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _parsed(model: type[BaseModel], params: dict[str, Any]) -> Any:
    try:
        return model.model_validate(params)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "params"
        raise RpcError(INVALID_PARAMS, f"invalid params: {where}: {first['msg']}") from None


def _plan_args(args: str | None) -> dict[str, Any]:
    if args is None:
        return {}
    try:
        parsed = json.loads(args)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise Invalid(["query", "args"], 'args is a JSON object, e.g. {"query": "..."}')
    return parsed


def _dump(result: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = result.model_dump(by_alias=True, exclude_none=True, mode="json")
    # mcp 2.x marks results `resultType`; clients of the 2025 protocol versions do not know it.
    dumped.pop("resultType", None)
    return dumped


def _error_body(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _rpc_error(request_id: Any, code: int, message: str) -> JSONResponse:
    return JSONResponse(_error_body(request_id, code, message))
