"""Agents of the call-agent API: configs kept as versions named by their content, deployed
to named environments, and called as runs of the built-in `chat` environment that return
once they end or wait for their caller's tool results.

The agent's template and the messages become the run's system prompt and prompt, its inline
tools the run's client-side tools, `max_iterations` its steps. The log id is the run id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from api.services.access import Access, Caller, Need
from api.services.agent_files import parse_agent_file, template_messages, transcript
from api.services.commands import CommandService
from api.services.errors import Invalid, NotFound
from api.services.live import LiveEvents, StreamEnd
from api.services.model_names import qualified_model
from api.services.runs import RunService
from loopline.models import (
    AgentKernel,
    AgentVersion,
    ChatMessage,
    ClientTool,
    ContinueRequest,
    EventType,
    EventView,
    ModelConfig,
    Provider,
    RunRequest,
    RunStatus,
    RunView,
    Scope,
    ToolResult,
    ToolResultMessage,
    parse_model,
)
from loopline.store import AgentStore, TraceStore
from loopline.store.agents import Deployment, agent_id_for

CHAT_ENVIRONMENT = "chat"
CHAT_SCENARIO = "respond"
# Where the agent call's own fields are kept on its run (never the payloads of save=false).
META_KEY = "agents_api"
# How long a call waits for its run to end or to need the caller, before answering with the
# run as it is (the caller reads it back, or continues it, by its id).
CALL_WAIT_SECONDS = 300.0


@dataclass(frozen=True)
class AgentRef:
    """Which agent a call means: given inline (a config or `.agent` text), or by reference."""

    agent: AgentKernel | str | None = None
    path: str | None = None
    agent_id: str | None = None
    version_id: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class AgentCall:
    messages: list[ChatMessage]
    inputs: dict[str, Any] = field(default_factory=dict)
    tool_choice: Any = None
    log_id: str | None = None
    provider_api_keys: dict[Provider, SecretStr] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    save: bool = True
    return_inputs: bool = True
    # The call's own fields (source, user, trace_parent_id, ...), kept and echoed back.
    echoed: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentTurn:
    """A run's turn as the agent's log: the run (with its trajectory) and its version."""

    run: RunView
    version: AgentVersion

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.run.metadata.get(META_KEY, {})
        return meta


@dataclass(frozen=True)
class AgentRecord:
    """An agent as listed or read: one of its versions, and where its versions are deployed."""

    version: AgentVersion
    deployments: list[Deployment]


@dataclass(frozen=True)
class AgentPage:
    total: int
    agents: list[AgentRecord]


@dataclass
class AgentService:
    agents: AgentStore
    store: TraceStore
    access: Access
    runs: RunService
    commands: CommandService
    live: LiveEvents

    async def save_version(self, caller: Caller, path: str, config: dict[str, Any]) -> AgentVersion:
        """The version of `config` at `path`; the same config is the same version."""
        project = self.access.project(caller, Scope.task_write)
        _model(AgentKernel.model_validate(config), ["body", "model"])
        return await self.agents.save(project, path, config)

    async def list_agents(
        self, caller: Caller, name: str | None, *, page: int, size: int
    ) -> AgentPage:
        """A page (from 1) of the project's agents by path, each as its deployed version
        (the default environment's, else its newest)."""
        project = self.access.project(caller, Scope.task_read)
        offset = (page - 1) * size
        total, ids = await self.agents.list_agents(project, name, limit=size, offset=offset)
        agents = [await self._record(project, agent_id, None) for agent_id in ids]
        return AgentPage(total=total, agents=agents)

    async def get_agent(
        self,
        caller: Caller,
        agent_id: str,
        version_id: str | None = None,
        environment: str | None = None,
    ) -> AgentRecord:
        """The agent as one version: `version_id`, else the one `environment` (else the
        default environment) points at, else its newest."""
        project = self.access.project(caller, Scope.task_read)
        if version_id is None:
            return await self._record(project, agent_id, environment)
        version = await self.agents.version(version_id, project)
        if version.agent_id != agent_id:
            raise NotFound(f"agent {agent_id!r} has no version {version_id!r}")
        return AgentRecord(version, await self.agents.deployments(agent_id))

    async def _record(self, project: str, agent_id: str, environment: str | None) -> AgentRecord:
        version = await self.agents.current(agent_id, project, environment)
        return AgentRecord(version, await self.agents.deployments(agent_id))

    async def deploy(
        self, caller: Caller, agent_id: str, environment: str, version_id: str
    ) -> AgentVersion:
        project = self.access.project(caller, Scope.task_write)
        version = await self.agents.version(version_id, project)
        if version.agent_id != agent_id:
            raise NotFound(f"agent {agent_id!r} has no version {version_id!r}")
        await self.agents.deploy(version, environment)
        return version

    async def call(self, caller: Caller, ref: AgentRef, call: AgentCall) -> str:
        """Start the agent's run and return its id (the log id); `turn` or `stream` follow."""
        version = await self._version(caller, ref)
        kernel = AgentKernel.model_validate(version.config)
        view, _ = await self.runs.start_run(caller, _run_request(call, kernel, version))
        return view.run_id

    async def resume(self, caller: Caller, log_id: str, messages: list[ToolResultMessage]) -> int:
        """Hand in the results of the tool calls of the agent's last message; returns the seq
        of the run's last event once they are recorded (where its next turn starts)."""
        results = [ToolResult(call_id=m.tool_call_id, content=m.content or "") for m in messages]
        await self.commands.continue_run(caller, log_id, ContinueRequest(tool_results=results))
        progress = await self.store.progress([log_id])
        return progress[log_id].last_seq if log_id in progress else 0

    async def turn(self, caller: Caller, log_id: str) -> AgentTurn:
        """The run once it has ended or needs its caller, with its trajectory. A run not to
        be saved forgets its payloads once it has ended; this answer still holds them."""
        await self.runs.wait_for_turn(caller, log_id, CALL_WAIT_SECONDS)
        return await self._finish_turn(caller, log_id)

    async def stream(
        self, caller: Caller, log_id: str, after: int = 0
    ) -> AsyncIterator[EventView | AgentTurn]:
        """The run's events after `after` as they happen until its turn is over, then the
        turn."""
        await self.access.run(caller, log_id, Need.events)
        return self._follow(caller, log_id, after)

    async def _follow(
        self, caller: Caller, log_id: str, after: int
    ) -> AsyncIterator[EventView | AgentTurn]:
        async for item in self.live.follow(log_id, after):
            if isinstance(item, StreamEnd):
                break
            if isinstance(item, EventView):
                yield item
                if _turn_ends(item):
                    break
        yield await self._finish_turn(caller, log_id)

    async def _finish_turn(self, caller: Caller, log_id: str) -> AgentTurn:
        run = await self.runs.get_run(caller, log_id, include_trajectory=True)
        meta = run.metadata.get(META_KEY, {})
        if not meta.get("save", True) and run.status.is_final:
            await self.store.forget_payloads(log_id)
        project = self.access.project(caller, Scope.task_read)
        version = await self.agents.version(str(meta.get("version_id", "")), project)
        return AgentTurn(run=run, version=version)

    async def _version(self, caller: Caller, ref: AgentRef) -> AgentVersion:
        project = self.access.project(caller, Scope.task_write)
        if ref.agent is None:
            if not (ref.version_id or ref.agent_id or ref.path):
                raise Invalid(
                    ["body", "agent"], "give the agent (a config or .agent text), or its path or id"
                )
            if ref.version_id:
                return await self.agents.version(ref.version_id, project)
            agent_id = ref.agent_id or agent_id_for(project, ref.path or "")
            return await self.agents.current(agent_id, project, ref.environment)
        kernel = parse_agent_file(ref.agent) if isinstance(ref.agent, str) else ref.agent
        path = ref.path
        if path is None and ref.agent_id:
            path = (await self.agents.current(ref.agent_id, project, None)).path
        if path is None:
            raise Invalid(["body", "path"], "an agent given inline needs its path")
        _model(kernel, ["body", "agent", "model"])
        return await self.agents.save(project, path, kernel.model_dump(exclude_none=True))


def _turn_ends(event: EventView) -> bool:
    """Whether the event says the run now waits for its caller, or has ended."""
    if event.type is not EventType.status:
        return False
    status = RunStatus(event.data["status"])
    return status is RunStatus.awaiting_input or status.is_final


def _run_request(call: AgentCall, kernel: AgentKernel, version: AgentVersion) -> RunRequest:
    rendered = template_messages(kernel, call.inputs)
    system = "\n\n".join(m.content or "" for m in rendered if m.role in {"system", "developer"})
    conversation = [m for m in [*rendered, *call.messages] if m.role not in {"system", "developer"}]
    if not conversation:
        raise Invalid(
            ["body", "messages"], "give messages, or an agent template with a user message"
        )
    tools = [] if call.tool_choice == "none" else kernel.tools
    meta = {
        **call.echoed,
        "version_id": version.version_id,
        "save": call.save,
        "tool_choice": call.tool_choice,
        "inputs": call.inputs if call.save and call.return_inputs else {},
        "messages": [m.model_dump(exclude_none=True) for m in call.messages] if call.save else [],
    }
    return RunRequest(
        run_id=call.log_id,
        environment=CHAT_ENVIRONMENT,
        scenario=CHAT_SCENARIO,
        args={"prompt": transcript(conversation)},
        model=_run_model(kernel, system),
        provider_api_keys=call.provider_api_keys,
        client_tools=[
            ClientTool(
                name=tool.json_schema.name,
                description=tool.json_schema.description,
                parameters=tool.json_schema.parameters,
            )
            for tool in tools
        ],
        max_steps=kernel.max_iterations,
        metadata={**call.metadata, META_KEY: meta},
    )


def _model(kernel: AgentKernel, loc: list[str | int]) -> ModelConfig:
    """The agent's model, provider-qualified; an Invalid at `loc` if it cannot be."""
    name = kernel.model
    if "/" not in name and kernel.provider:
        name = f"{kernel.provider}/{name}"
    try:
        return parse_model(qualified_model(name, loc))
    except ValueError as error:
        raise Invalid(loc, str(error)) from None


def _run_model(kernel: AgentKernel, system: str) -> ModelConfig:
    config = _model(kernel, ["body", "agent", "model"])
    changes: dict[str, Any] = {"system_prompt": system or None}
    if kernel.temperature is not None:
        changes["temperature"] = kernel.temperature
    if kernel.max_tokens is not None and kernel.max_tokens > 0:
        changes["max_tokens"] = kernel.max_tokens
    return config.model_copy(update=changes)
