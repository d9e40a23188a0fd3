"""Native API v1: what a caller tells a live run — messages, tool results, cancel, close —
also as a JSON-RPC `command`, and the token that grants only a run's events and commands."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from api.http.deps import Svc, Who
from api.http.routing import DocumentedRoute
from api.services import Services
from api.services.access import Caller
from api.services.commands import COMMAND_PARAMS, UnknownCommand
from api.services.errors import Conflict, Invalid, Unavailable
from loopline.models import (
    CancelRequest,
    CloseRequest,
    ConnectionToken,
    ContinueRequest,
    MessageAck,
    RunView,
    UserMessageRequest,
)

router = APIRouter(prefix="/v1/runs", tags=["commands"], route_class=DocumentedRoute)


@router.post("/{run_id}/messages")
async def send_message(run_id: str, request: UserMessageRequest, svc: Svc, who: Who) -> MessageAck:
    """Queue a user message for the agent's next step; in a session that is idle, it starts
    the next turn. A repeated `message_id` is acknowledged without being queued again."""
    return await svc.commands.send_message(who, run_id, request)


@router.post("/{run_id}/continue")
async def continue_run(run_id: str, request: ContinueRequest, svc: Svc, who: Who) -> RunView:
    """Results of the pending client-side tool calls (one per call id, all at once)."""
    return await svc.commands.continue_run(who, run_id, request)


@router.post("/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_run(
    run_id: str, svc: Svc, who: Who, request: Annotated[CancelRequest | None, Body()] = None
) -> RunView:
    """Ask a run to stop gracefully; it still tears down and records a final status."""
    return await svc.commands.cancel(who, run_id, request or CancelRequest())


@router.post("/{run_id}/close", status_code=status.HTTP_202_ACCEPTED)
async def close_run(
    run_id: str, svc: Svc, who: Who, request: Annotated[CloseRequest | None, Body()] = None
) -> RunView:
    """End a session once the agent has answered; it is evaluated and torn down."""
    return await svc.commands.close(who, run_id, request or CloseRequest())


def _document_methods(schema: dict[str, Any]) -> None:
    """The methods and the params each takes, in the OpenAPI document. Validation stays
    with the service, which answers an unknown method or bad params in JSON-RPC's terms."""
    schema["properties"]["method"]["enum"] = list(COMMAND_PARAMS)
    schema["oneOf"] = [
        {
            "properties": {"method": {"const": name}, "params": params.model_json_schema()},
            "required": ["method", "params"] if _requires_params(params) else ["method"],
        }
        for name, params in COMMAND_PARAMS.items()
    ]


def _requires_params(params: type[BaseModel]) -> bool:
    return any(field.is_required() for field in params.model_fields.values())


class JsonRpcCommand(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_methods)

    jsonrpc: Literal["2.0"] = "2.0"
    method: str
    params: dict[str, Any] = {}
    id: str | int | None = None


@router.post("/{run_id}/command")
async def command(run_id: str, request: JsonRpcCommand, svc: Svc, who: Who) -> JSONResponse:
    """JSON-RPC 2.0: `user_message` {content, message_id?}, `cancel` {reason?}, `close`
    {reason?}. Errors use JSON-RPC codes with HTTP 400 (bad command) or 409 (run state)."""
    return await run_command(svc, who, run_id, request)


async def run_command(
    svc: Services,
    who: Caller,
    run_id: str,
    request: JsonRpcCommand,
    *,
    refused_status: int = status.HTTP_409_CONFLICT,
    unreachable_status: int = status.HTTP_503_SERVICE_UNAVAILABLE,
) -> JSONResponse:
    """A JSON-RPC command; a dialect picks the HTTP statuses of a refusal (the run's state)
    and of an unreachable workflow."""
    try:
        result = await svc.commands.run_command(who, run_id, request.method, request.params)
    except UnknownCommand as error:
        return _rpc_error(request, 400, -32601, error.message)
    except Invalid as error:
        return _rpc_error(request, 400, -32602, error.message)
    except Conflict as error:
        return _rpc_error(request, refused_status, -32000, error.message)
    except Unavailable as error:
        return _rpc_error(request, unreachable_status, -32603, error.message)
    return JSONResponse({"jsonrpc": "2.0", "id": request.id, "result": result})


def _rpc_error(request: JsonRpcCommand, http: int, code: int, message: str) -> JSONResponse:
    body = {"jsonrpc": "2.0", "id": request.id, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=http)


@router.get("/{run_id}/connection_token")
async def connection_token(run_id: str, svc: Svc, who: Who) -> ConnectionToken:
    """A token (JWT, 24 h) for this run's events and logs, and, if this key may write, its
    commands; nothing else. Send it as `Authorization: Bearer <token>`, or as `?token=` to
    an event stream (for EventSource)."""
    return await svc.access.connection_token(who, run_id)
