"""The call-agent dialect: call an agent (its config inline, as a raw `.agent` file, or by
path, id, version or deployed environment) and continue it after a client-side tool call;
upsert, deploy, list and read agents. Served under `/agents-api`, authenticated by
`X-API-KEY`.

An agent call is a run of the built-in `chat` environment: the agent's template and the
messages become the run's system prompt and prompt, its inline tools the run's client-side
tools, `max_iterations` its steps. The log id is the run id.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from api.http.deps import Svc, Who
from api.http.routing import DocumentedRoute
from api.http.sse import data_frame, sse_response
from api.services import Services
from api.services.access import Caller
from api.services.agent_files import template_inputs
from api.services.agents import META_KEY, AgentCall, AgentRecord, AgentRef, AgentTurn
from loopline.models import (
    AgentKernel,
    AgentVersion,
    ChatMessage,
    EventType,
    EventView,
    IsoDateTime,
    Provider,
    RunStatus,
    StopReason,
    ToolResultMessage,
)

router = APIRouter(prefix="/agents-api", tags=["dialect: agents-api"], route_class=DocumentedRoute)

FINISH_REASONS = {StopReason.answered: "stop", StopReason.max_steps: "max_iterations"}
# The environment that calls naming no version use (the agent store's default), which
# humanloop tags "default".
DEFAULT_ENVIRONMENT = "production"
MAX_PAGE_SIZE = 100
# The call's own fields that are kept with its run and come back in its log.
ECHOED = ("source", "user", "environment", "trace_parent_id", "source_datapoint_id")


class CallRequest(BaseModel):
    stream: bool = False
    path: str | None = Field(default=None, min_length=1, max_length=500)
    id: str | None = None
    messages: list[ChatMessage] = Field(default_factory=list)
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    agent: AgentKernel | str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    start_time: IsoDateTime | None = None
    end_time: IsoDateTime | None = None
    log_status: Literal["complete", "incomplete"] | None = None
    source_datapoint_id: str | None = None
    trace_parent_id: str | None = None
    user: str | None = None
    environment: str | None = None
    save: bool = True
    log_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    provider_api_keys: dict[Provider, SecretStr] = Field(default_factory=dict)
    return_inputs: bool = True
    include_trace_children: bool = False


class ContinueCall(BaseModel):
    log_id: str = Field(min_length=1)
    messages: list[ToolResultMessage] = Field(min_length=1)
    provider_api_keys: dict[Provider, SecretStr] = Field(default_factory=dict)
    stream: bool = False
    include_trace_children: bool = False


class UpsertAgent(AgentKernel):
    path: str = Field(min_length=1, max_length=500)


class AgentEnvironment(BaseModel):
    id: str
    name: str
    tag: Literal["default", "other"]
    created_at: datetime = Field(description="When the version was deployed there.")


class AgentInfo(BaseModel):
    """An agent version with its config's fields (model, template, tools, ...)."""

    model_config = ConfigDict(extra="allow")

    id: str
    path: str
    name: str
    version_id: str
    type: Literal["agent"] = "agent"
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime
    status: Literal["committed"] = "committed"
    # Not counted: a version's logs are its runs, read through /v1/runs.
    version_logs_count: int = 0
    total_logs_count: int = 0
    inputs: list[dict[str, str]] = Field(description="The template's {{inputs}}, by name.")
    tools: list[dict[str, Any]] = Field(default_factory=list)
    environments: list[AgentEnvironment] | None = Field(
        default=None, description="Where this version is deployed (listing and read only)."
    )


class AgentPage(BaseModel):
    records: list[AgentInfo]
    page: int
    size: int
    total: int


class AgentLog(BaseModel):
    id: str
    agent: AgentInfo
    evaluator_logs: list[dict[str, Any]]
    output_message: dict[str, Any] | None
    prompt_tokens: int
    reasoning_tokens: int
    output_tokens: int
    prompt_cost: float
    output_cost: float
    finish_reason: str | None
    messages: list[dict[str, Any]]
    tool_choice: Any
    start_time: datetime | None
    end_time: datetime | None
    output: str | None
    created_at: datetime
    error: str | None
    provider_latency: float | None
    stdout: str | None
    provider_request: dict[str, Any] | None
    provider_response: dict[str, Any] | None
    inputs: dict[str, Any]
    source: str | None
    metadata: dict[str, Any]
    log_status: Literal["complete", "incomplete"]
    source_datapoint_id: str | None
    trace_parent_id: str | None
    batches: list[str]
    user: str | None
    environment: str | None
    save: bool
    log_id: str
    trace_flow_id: str | None
    trace_id: str
    trace_children: list[dict[str, Any]]
    previous_agent_message: dict[str, Any] | None


# --- endpoints ------------------------------------------------------------------------------


@router.post("/agents/call", response_model=AgentLog)
async def call_agent(
    body: CallRequest,
    svc: Svc,
    who: Who,
    version_id: str | None = None,
    environment: Annotated[str | None, Query(description="A deployed version's environment.")] = (
        None
    ),
) -> AgentLog | StreamingResponse:
    """Run the agent until it answers, runs out of iterations, or calls a tool only the
    caller can run (then the log is `incomplete`: continue it with /agents/continue)."""
    ref = AgentRef(
        agent=body.agent,
        path=body.path,
        agent_id=body.id,
        version_id=version_id,
        environment=environment,
    )
    echoed: dict[str, Any] = {name: getattr(body, name) for name in ECHOED}
    echoed["start_time"] = body.start_time.isoformat() if body.start_time else None
    call = AgentCall(
        messages=body.messages,
        inputs=body.inputs,
        tool_choice=body.tool_choice,
        log_id=body.log_id,
        provider_api_keys=body.provider_api_keys,
        metadata=body.metadata,
        save=body.save,
        return_inputs=body.return_inputs,
        echoed=echoed,
    )
    run_id = await svc.agents.call(who, ref, call)
    if body.stream:
        return await _stream(svc, who, run_id, 0, body.include_trace_children)
    return agent_log(await svc.agents.turn(who, run_id), body.include_trace_children)


@router.post("/agents/continue", response_model=AgentLog)
async def continue_agent(body: ContinueCall, svc: Svc, who: Who) -> AgentLog | StreamingResponse:
    """Hand in the results of the tool calls of the agent's last message and run it on."""
    resumed_at = await svc.agents.resume(who, body.log_id, body.messages)
    if body.stream:
        return await _stream(svc, who, body.log_id, resumed_at, body.include_trace_children)
    return agent_log(await svc.agents.turn(who, body.log_id), body.include_trace_children)


@router.post("/agents")
async def upsert_agent(body: UpsertAgent, svc: Svc, who: Who) -> AgentInfo:
    """Create the agent at `path`, or a new version of it; the same config is the same
    version (its id is a hash of the content)."""
    config = body.model_dump(exclude={"path"}, exclude_none=True)
    return _agent(await svc.agents.save_version(who, body.path, config))


@router.get("/agents")
async def list_agents(
    svc: Svc,
    who: Who,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 10,
    name: Annotated[str | None, Query(max_length=500)] = None,
) -> AgentPage:
    """The project's agents by path, a page at a time (`page` from 1), each as its deployed
    version; `name` keeps those whose path holds it (any case)."""
    found = await svc.agents.list_agents(who, name, page=page, size=size)
    return AgentPage(
        records=[_listed(record) for record in found.agents],
        page=page,
        size=size,
        total=found.total,
    )


@router.get("/agents/{agent_id}")
async def get_agent(
    agent_id: str,
    svc: Svc,
    who: Who,
    version_id: str | None = None,
    environment: str | None = None,
) -> AgentInfo:
    """The agent as `version_id`, or as the version `environment` (else production, else
    its newest) points at."""
    return _listed(await svc.agents.get_agent(who, agent_id, version_id, environment))


@router.post("/agents/{agent_id}/environments/{environment_name}")
async def deploy_agent(
    agent_id: str,
    environment_name: str,
    version_id: Annotated[str, Query()],
    svc: Svc,
    who: Who,
) -> AgentInfo:
    """Point a named environment at a version: calls with `?environment=` (and, for
    'production', calls naming no version) use it."""
    return _agent(await svc.agents.deploy(who, agent_id, environment_name, version_id))


# --- responses ------------------------------------------------------------------------------


async def _stream(
    svc: Services, who: Caller, run_id: str, after: int, children: bool
) -> StreamingResponse:
    items = await svc.agents.stream(who, run_id, after)

    async def frames() -> AsyncIterator[str]:
        async for item in items:
            if isinstance(item, EventView):
                event = {"type": item.type.value, "seq": item.seq, "data": item.data}
                yield data_frame(json.dumps(event, default=str))
            else:
                log = agent_log(item, children).model_dump(mode="json")
                yield data_frame(json.dumps({"type": "agent_log", "log": log}))

    return sse_response(frames())


def agent_log(turn: AgentTurn, include_children: bool) -> AgentLog:
    view, version, meta = turn.run, turn.version, turn.meta
    messages = [
        (event.seq, chat_message(event.data), event.created_at)
        for event in view.trajectory or []
        if event.type is EventType.message
    ]
    replies = [m for _, m, _ in messages if m["role"] == "assistant"]
    last = replies[-1] if replies else None
    incomplete = view.status is RunStatus.awaiting_input
    usage = view.usage
    start = datetime.fromisoformat(meta["start_time"]) if meta.get("start_time") else None
    return AgentLog(
        id=view.run_id,
        agent=_agent(version),
        evaluator_logs=[],
        output_message=last,
        prompt_tokens=usage.prompt_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        output_tokens=usage.completion_tokens,
        prompt_cost=usage.prompt_cost,
        output_cost=usage.output_cost,
        finish_reason="tool_call" if incomplete else _finish(view.stop_reason),
        messages=meta.get("messages", []),
        tool_choice=meta.get("tool_choice"),
        start_time=start or view.created_at,
        end_time=view.ended_at,
        output=view.answer,
        created_at=view.created_at,
        error=view.error,
        provider_latency=(
            (view.ended_at - view.created_at).total_seconds() if view.ended_at else None
        ),
        stdout=None,
        provider_request=None,
        provider_response=None,
        inputs=meta.get("inputs", {}),
        source=meta.get("source"),
        metadata={k: v for k, v in view.metadata.items() if k != META_KEY},
        log_status="incomplete" if incomplete or not view.status.is_final else "complete",
        source_datapoint_id=meta.get("source_datapoint_id"),
        trace_parent_id=meta.get("trace_parent_id"),
        batches=[view.batch_id] if view.batch_id else [],
        user=meta.get("user"),
        environment=meta.get("environment"),
        save=bool(meta.get("save", True)),
        log_id=view.run_id,
        trace_flow_id=None,
        trace_id=view.run_id,
        trace_children=(
            [
                _child(view.run_id, seq, m, at)
                for seq, m, at in messages
                if m["role"] in {"assistant", "tool"}
            ]
            if include_children
            else []
        ),
        previous_agent_message=last if incomplete else None,
    )


def chat_message(data: dict[str, Any]) -> dict[str, Any]:
    """A trajectory message in the chat-completions shape the agents API speaks."""
    message: dict[str, Any] = {"role": data["role"], "content": data.get("content", "")}
    calls = data.get("tool_calls") or []
    if calls:
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
            }
            for call in calls
        ]
    if data.get("tool_call_id"):
        message["tool_call_id"] = data["tool_call_id"]
    return message


def _child(run_id: str, seq: int, message: dict[str, Any], at: datetime) -> dict[str, Any]:
    """A log nested in the agent's trace: a model call (prompt log) or a tool's result."""
    kind = "tool" if message["role"] == "tool" else "prompt"
    child: dict[str, Any] = {
        "id": f"{run_id}-{seq}",
        "type": kind,
        "created_at": at.isoformat(),
        "trace_parent_id": run_id,
    }
    if kind == "tool":
        child["output"] = message["content"]
        child["tool_call_id"] = message.get("tool_call_id")
    else:
        child["output_message"] = message
        child["output"] = message["content"]
    return child


def _finish(stop: StopReason | None) -> str | None:
    if stop is None:
        return None
    return FINISH_REASONS.get(stop, stop.value)


def _agent(version: AgentVersion) -> AgentInfo:
    fields: dict[str, Any] = {
        **version.config,
        "id": version.agent_id,
        "path": version.path,
        "name": version.path.rsplit("/", 1)[-1],
        "version_id": version.version_id,
        "created_at": version.created_at,
        # A version never changes: its content is its id.
        "updated_at": version.created_at,
        "last_used_at": version.created_at,
        "inputs": [{"name": name} for name in template_inputs(version.config)],
    }
    return AgentInfo.model_validate(fields)


def _listed(record: AgentRecord) -> AgentInfo:
    """The version with the environments that point at it."""
    info = _agent(record.version)
    info.environments = [
        AgentEnvironment(
            id=f"env_{deployment.environment}",
            name=deployment.environment,
            tag="default" if deployment.environment == DEFAULT_ENVIRONMENT else "other",
            created_at=deployment.deployed_at,
        )
        for deployment in record.deployments
        if deployment.version_id == record.version.version_id
    ]
    return info
