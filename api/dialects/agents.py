"""The call-agent dialect: call an agent (its config inline, as a raw `.agent` file, or by
path, id, version or deployed environment) and continue it after a client-side tool call.
Served under `/agents-api`, authenticated by `X-API-KEY`.

An agent call is a run of the built-in `chat` environment: the agent's template and the
messages become the run's system prompt and prompt, its inline tools the run's client-side
tools, `max_iterations` its steps. The log id is the run id.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from api.access import WriteProject
from api.deps import Agents
from api.dialects._common import native_model
from api.errors import InvalidRequestError
from api.routes.runs import SSE_HEADERS
from loopline.agents import AgentVersion
from loopline.models import (
    MAX_STEPS_LIMIT,
    TOOL_NAME_PATTERN,
    ClientTool,
    ContinueRequest,
    EventType,
    ModelConfig,
    Provider,
    RunRequest,
    RunStatus,
    RunView,
    StopReason,
    ToolResult,
    parse_model,
)
from loopline.store import RunNotFoundError

router = APIRouter(prefix="/agents-api", tags=["dialect: agents-api"])

CHAT_ENVIRONMENT = "chat"
CHAT_SCENARIO = "respond"
# Where the agent call's own fields are kept on its run (never the payloads of save=false).
META_KEY = "agents_api"
STREAM_POLL_SECONDS = 0.2
FRONTMATTER = re.compile(r"\A\s*---[ \t]*\n(.*?)\n---[ \t]*\n?(.*)\Z", re.DOTALL)
TEMPLATE_TAG = re.compile(r"<(system|user|assistant)>\s*(.*?)\s*</\1>", re.DOTALL)
VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
FINISH_REASONS = {StopReason.answered: "stop", StopReason.max_steps: "max_iterations"}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class FunctionSchema(BaseModel):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class AgentTool(BaseModel):
    """An inline tool: the caller runs it, so a call to it suspends the agent."""

    type: Literal["inline"] = "inline"
    json_schema: FunctionSchema
    on_agent_call: Literal["stop", "continue"] | None = None


class AgentKernel(BaseModel):
    """An agent's config: what its version's content hash covers (other fields are kept)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str = Field(min_length=1)
    provider: str | None = None
    template: str | list[ChatMessage] | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = None
    max_iterations: int = Field(default=5, ge=1, le=MAX_STEPS_LIMIT)
    tools: list[AgentTool] = Field(default_factory=list)


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
    start_time: datetime | None = None
    end_time: datetime | None = None
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
    messages: list[ChatMessage] = Field(min_length=1)
    provider_api_keys: dict[Provider, SecretStr] = Field(default_factory=dict)
    stream: bool = False
    include_trace_children: bool = False


class UpsertAgent(AgentKernel):
    path: str = Field(min_length=1, max_length=500)


class AgentInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    path: str
    name: str
    version_id: str
    type: Literal["agent"] = "agent"
    created_at: datetime


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
    agents: Agents,
    project: WriteProject,
    version_id: str | None = None,
    environment: Annotated[str | None, Query(description="A deployed version's environment.")] = (
        None
    ),
) -> AgentLog | StreamingResponse:
    """Run the agent until it answers, runs out of iterations, or calls a tool only the
    caller can run (then the log is `incomplete`: continue it with /agents/continue)."""
    version = await _version(body, agents, project, version_id, environment)
    kernel = AgentKernel.model_validate(version.config)
    request = _run_request(body, kernel, version)
    view = await agents.start(request, project)
    if body.stream:
        return _stream(view.run_id, agents, version, body.save, body.include_trace_children)
    return _log(
        await agents.turn(view.run_id, save=body.save), version, body.include_trace_children
    )


@router.post("/agents/continue", response_model=AgentLog)
async def continue_agent(
    body: ContinueCall, agents: Agents, project: WriteProject
) -> AgentLog | StreamingResponse:
    """Hand in the results of the tool calls of the agent's last message and run it on."""
    view = await agents.run(body.log_id)
    if view.project != project:
        raise RunNotFoundError(f"no log {body.log_id!r}")
    meta = view.metadata.get(META_KEY, {})
    version = await agents.find_version(project, version_id=meta.get("version_id"))
    results = []
    for index, message in enumerate(body.messages):
        if message.role != "tool" or not message.tool_call_id:
            raise InvalidRequestError(
                ["body", "messages", index],
                "continue takes tool messages only: {role: 'tool', tool_call_id, content}",
            )
        results.append(ToolResult(call_id=message.tool_call_id, content=message.content or ""))
    await agents.resume(body.log_id, ContinueRequest(tool_results=results))
    save = bool(meta.get("save", True))
    if body.stream:
        return _stream(body.log_id, agents, version, save, body.include_trace_children)
    return _log(await agents.turn(body.log_id, save=save), version, body.include_trace_children)


@router.post("/agents")
async def upsert_agent(body: UpsertAgent, agents: Agents, project: WriteProject) -> AgentInfo:
    """Create the agent at `path`, or a new version of it; the same config is the same
    version (its id is a hash of the content)."""
    config = body.model_dump(exclude={"path"}, exclude_none=True)
    return _agent(await agents.save_version(project, body.path, config))


@router.post("/agents/{agent_id}/environments/{environment_name}")
async def deploy_agent(
    agent_id: str,
    environment_name: str,
    version_id: Annotated[str, Query()],
    agents: Agents,
    project: WriteProject,
) -> AgentInfo:
    """Point a named environment at a version: calls with `?environment=` (and, for
    'production', calls naming no version) use it."""
    return _agent(await agents.deploy(project, agent_id, environment_name, version_id))


# --- requests -------------------------------------------------------------------------------


async def _version(
    body: CallRequest,
    agents: Agents,
    project: str,
    version_id: str | None,
    environment: str | None,
) -> AgentVersion:
    if body.agent is None:
        if not (version_id or body.id or body.path):
            raise InvalidRequestError(
                ["body", "agent"], "give the agent (a config or .agent text), or its path or id"
            )
        return await agents.find_version(
            project,
            version_id=version_id,
            agent_id=body.id,
            path=body.path,
            environment=environment,
        )
    kernel = _parse_agent_file(body.agent) if isinstance(body.agent, str) else body.agent
    path = body.path
    if path is None and body.id:
        path = (await agents.find_version(project, agent_id=body.id)).path
    if path is None:
        raise InvalidRequestError(["body", "path"], "an agent given inline needs its path")
    return await agents.save_version(project, path, kernel.model_dump(exclude_none=True))


def _parse_agent_file(text: str) -> AgentKernel:
    """A `.agent` file: YAML front matter (the config) and a template of <system>, <user>
    and <assistant> blocks."""
    match = FRONTMATTER.match(text)
    if match is None:
        raise InvalidRequestError(
            ["body", "agent"], "a .agent file starts with '---', its YAML config, then '---'"
        )
    try:
        config = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        raise InvalidRequestError(["body", "agent"], f"bad YAML front matter: {error}") from None
    if not isinstance(config, dict):
        raise InvalidRequestError(["body", "agent"], "the front matter must be a YAML mapping")
    config["tools"] = [
        tool if isinstance(tool, dict) and "json_schema" in tool else {"json_schema": tool}
        for tool in config.get("tools") or []
    ]
    blocks = TEMPLATE_TAG.findall(match.group(2))
    if blocks:
        config["template"] = [{"role": role, "content": content} for role, content in blocks]
    elif match.group(2).strip():
        config["template"] = match.group(2).strip()
    try:
        return AgentKernel.model_validate(config)
    except ValidationError as error:
        item = error.errors()[0]
        where = ".".join(str(part) for part in item["loc"])
        raise InvalidRequestError(
            ["body", "agent", *item["loc"]], f"{where}: {item['msg']}"
        ) from None


def _run_request(body: CallRequest, kernel: AgentKernel, version: AgentVersion) -> RunRequest:
    template = kernel.template or []
    if isinstance(template, str):
        template = [ChatMessage(role="system", content=template)]
    rendered = [_render(message, body.inputs) for message in template]
    system = "\n\n".join(m.content or "" for m in rendered if m.role in {"system", "developer"})
    conversation = [m for m in [*rendered, *body.messages] if m.role not in {"system", "developer"}]
    if not conversation:
        raise InvalidRequestError(
            ["body", "messages"], "give messages, or an agent template with a user message"
        )
    tools = [] if body.tool_choice == "none" else kernel.tools
    meta = {
        "version_id": version.version_id,
        "save": body.save,
        "source": body.source,
        "user": body.user,
        "environment": body.environment,
        "trace_parent_id": body.trace_parent_id,
        "source_datapoint_id": body.source_datapoint_id,
        "tool_choice": body.tool_choice,
        "start_time": body.start_time.isoformat() if body.start_time else None,
        "inputs": body.inputs if body.save and body.return_inputs else {},
        "messages": [m.model_dump(exclude_none=True) for m in body.messages] if body.save else [],
    }
    return RunRequest(
        run_id=body.log_id,
        environment=CHAT_ENVIRONMENT,
        scenario=CHAT_SCENARIO,
        args={"prompt": _transcript(conversation)},
        model=_model(kernel, system),
        provider_api_keys=body.provider_api_keys,
        client_tools=[
            ClientTool(
                name=tool.json_schema.name,
                description=tool.json_schema.description,
                parameters=tool.json_schema.parameters,
            )
            for tool in tools
        ],
        max_steps=kernel.max_iterations,
        metadata={**body.metadata, META_KEY: meta},
    )


def _model(kernel: AgentKernel, system: str) -> ModelConfig:
    name = kernel.model
    if "/" not in name and kernel.provider:
        name = f"{kernel.provider}/{name}"
    try:
        config = parse_model(native_model(name))
    except ValueError as error:
        raise InvalidRequestError(["body", "agent", "model"], str(error)) from None
    changes: dict[str, Any] = {"system_prompt": system or None}
    if kernel.temperature is not None:
        changes["temperature"] = kernel.temperature
    if kernel.max_tokens is not None and kernel.max_tokens > 0:
        changes["max_tokens"] = kernel.max_tokens
    return config.model_copy(update=changes)


def _render(message: ChatMessage, inputs: dict[str, Any]) -> ChatMessage:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in inputs:
            raise InvalidRequestError(
                ["body", "inputs", name], f"the agent's template needs input {name!r}"
            )
        return str(inputs[name])

    return message.model_copy(update={"content": VARIABLE.sub(value, message.content or "")})


def _transcript(conversation: list[ChatMessage]) -> str:
    """The run's prompt: a lone user message as it is, a longer conversation as a transcript."""
    if len(conversation) == 1 and conversation[0].role == "user":
        return conversation[0].content or ""
    return "\n\n".join(f"{m.role.title()}: {m.content or ''}" for m in conversation)


# --- responses ------------------------------------------------------------------------------


def _stream(
    run_id: str, agents: Agents, version: AgentVersion, save: bool, children: bool
) -> StreamingResponse:
    async def frames() -> AsyncIterator[str]:
        seq = 0
        while True:
            view = await agents.run(run_id)
            for event in await agents.events_after(run_id, seq):
                seq = event.seq
                yield _sse({"type": event.type.value, "seq": event.seq, "data": event.data})
            if view.status.is_final or view.status is RunStatus.awaiting_input:
                break
            await asyncio.sleep(STREAM_POLL_SECONDS)
        log = _log(await agents.turn(run_id, save=save), version, children)
        yield _sse({"type": "agent_log", "log": log.model_dump(mode="json")})

    return StreamingResponse(frames(), media_type="text/event-stream", headers=SSE_HEADERS)


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, default=str)}\n\n"


def _log(view: RunView, version: AgentVersion, include_children: bool) -> AgentLog:
    meta: dict[str, Any] = view.metadata.get(META_KEY, {})
    messages = [
        (event.seq, _chat(event.data), event.created_at)
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


def _chat(data: dict[str, Any]) -> dict[str, Any]:
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
    return AgentInfo(
        id=version.agent_id,
        path=version.path,
        name=version.path.rsplit("/", 1)[-1],
        version_id=version.version_id,
        created_at=version.created_at,
        **version.config,
    )
