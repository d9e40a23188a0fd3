"""Native API v1: what a caller tells a live run — messages, tool results, cancel, close —
also as the JSON-RPC `command` of the task-runs API, and the token that grants only these."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from api.access import RunOrTokenWrite, RunWrite, SignerDep
from api.deps import Service
from api.errors import ConflictError, UnavailableError
from loopline.models import (
    CancelRequest,
    CloseRequest,
    ConnectionToken,
    ContinueRequest,
    MessageAck,
    RunView,
    UserMessageRequest,
)

router = APIRouter(prefix="/v1/runs", tags=["commands"])

COMMANDS = ("user_message", "cancel", "close")


@router.post("/{run_id}/messages", dependencies=[RunOrTokenWrite])
async def send_message(run_id: str, request: UserMessageRequest, service: Service) -> MessageAck:
    """Queue a user message for the agent's next step; in a session that is idle, it starts
    the next turn. A repeated `message_id` is acknowledged without being queued again."""
    return await service.send_message(run_id, request)


@router.post("/{run_id}/continue", dependencies=[RunOrTokenWrite])
async def continue_run(run_id: str, request: ContinueRequest, service: Service) -> RunView:
    """Results of the pending client-side tool calls (one per call id, all at once)."""
    return await service.continue_run(run_id, request)


@router.post(
    "/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED, dependencies=[RunOrTokenWrite]
)
async def cancel_run(
    run_id: str, service: Service, request: Annotated[CancelRequest | None, Body()] = None
) -> RunView:
    """Ask a run to stop gracefully; it still tears down and records a final status."""
    return await service.cancel_run(run_id, request or CancelRequest())


@router.post(
    "/{run_id}/close", status_code=status.HTTP_202_ACCEPTED, dependencies=[RunOrTokenWrite]
)
async def close_run(
    run_id: str, service: Service, request: Annotated[CloseRequest | None, Body()] = None
) -> RunView:
    """End a session once the agent has answered; it is evaluated and torn down."""
    return await service.close_run(run_id, request or CloseRequest())


class JsonRpcCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jsonrpc: Literal["2.0"] = "2.0"
    method: str
    params: dict[str, Any] = {}
    id: str | int | None = None


@router.post("/{run_id}/command", dependencies=[RunOrTokenWrite])
async def command(run_id: str, request: JsonRpcCommand, service: Service) -> JSONResponse:
    """JSON-RPC 2.0: `user_message` {content, message_id?}, `cancel` {reason?}, `close`
    {reason?}. Errors use JSON-RPC codes with HTTP 400 (bad command) or 409 (run state)."""
    return await run_command(run_id, request, service)


async def run_command(
    run_id: str,
    request: JsonRpcCommand,
    service: Service,
    *,
    refused_status: int = status.HTTP_409_CONFLICT,
    unreachable_status: int = status.HTTP_503_SERVICE_UNAVAILABLE,
) -> JSONResponse:
    """Run a JSON-RPC command; a dialect picks the HTTP statuses of a refusal (the run's
    state) and of an unreachable workflow."""
    try:
        result = await _dispatch(run_id, request, service)
    except ValidationError as error:
        return _rpc_error(request, 400, -32602, f"invalid params: {_first(error)}")
    except ConflictError as error:
        return _rpc_error(request, refused_status, -32000, str(error))
    except UnavailableError as error:
        return _rpc_error(request, unreachable_status, -32603, str(error))
    if result is None:
        return _rpc_error(
            request, 400, -32601, f"unknown method {request.method!r}; use {', '.join(COMMANDS)}"
        )
    return JSONResponse({"jsonrpc": "2.0", "id": request.id, "result": result})


async def _dispatch(
    run_id: str, request: JsonRpcCommand, service: Service
) -> dict[str, Any] | None:
    params = request.params
    if request.method == "user_message":
        ack = await service.send_message(run_id, UserMessageRequest.model_validate(params))
        return ack.model_dump(mode="json")
    if request.method == "cancel":
        view = await service.cancel_run(run_id, CancelRequest.model_validate(params))
        return {"run_id": run_id, "status": view.status.value}
    if request.method == "close":
        view = await service.close_run(run_id, CloseRequest.model_validate(params))
        return {"run_id": run_id, "status": view.status.value}
    return None


def _rpc_error(request: JsonRpcCommand, http: int, code: int, message: str) -> JSONResponse:
    body = {"jsonrpc": "2.0", "id": request.id, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=http)


def _first(error: ValidationError) -> str:
    item = error.errors()[0]
    return f"{'.'.join(str(p) for p in item['loc']) or 'params'}: {item['msg']}"


@router.get("/{run_id}/connection_token", dependencies=[RunWrite])
async def connection_token(run_id: str, service: Service, signer: SignerDep) -> ConnectionToken:
    """A token (JWT, 24 h) that grants this run's events, logs and commands, and nothing
    else: send it as `Authorization: Bearer <token>` or `?token=` (for EventSource)."""
    await service.get_run(run_id)
    return signer.connection_token(run_id)
