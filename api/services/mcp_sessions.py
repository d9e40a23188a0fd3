"""MCP sessions: an environment served to an agent that runs elsewhere.

A session is a Loopline run whose agent is the client (model `client`). Its id is the
run's id, so a session survives the API process that opened it. The run starts when the
client picks its scenario (by getting the scenario's prompt, or as the session's URL names
it); every tool call is a step of the run, a durable tool activity keyed by the client's
idempotency key; the client's answer, its reading of the scenario's result, or the end of
the session has the run evaluated into a reward.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from api.services.access import Access, Caller, Need
from api.services.environments import EnvironmentService
from api.services.errors import Conflict, Invalid, NotFound
from api.services.runs import RunService
from api.services.workflows import Workflows
from loopline.models import (
    CLIENT_MODEL,
    MAX_ARGS_BYTES,
    RUN_ID_PATTERN,
    EnvironmentInfo,
    EventFilter,
    EventType,
    Message,
    RunRequest,
    RunView,
    ScenarioInfo,
    Scope,
    ToolInfo,
)
from loopline.store import TraceStore
from workflows.contract.names import (
    CLIENT_ANSWER_UPDATE,
    CLIENT_READY_UPDATE,
    CLIENT_TOOL_CALL_UPDATE,
    REMOTE_TOOLS_KEY,
    SETUP_KEY,
    SYSTEM_PROMPT_KEY,
    tool_key,
)
from workflows.contract.payloads import (
    ClientAnswer,
    ClientToolCall,
    ClientToolCallAck,
    RunRef,
    RunState,
)

# How long a session's run waits for the client's next call before it is evaluated.
DEFAULT_IDLE_SECONDS = 3600
MAX_KEY_CHARS = 200


@dataclass(frozen=True)
class SessionPlan:
    """What the session's URL says it plays when the client does not pick a scenario."""

    scenario: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    task: str | None = None
    max_steps: int | None = None

    @property
    def chosen(self) -> bool:
        return self.scenario is not None or self.task is not None


@dataclass(frozen=True)
class Session:
    caller: Caller
    environment: str
    session_id: str
    plan: SessionPlan = SessionPlan()


@dataclass(frozen=True)
class ToolOutcome:
    content: str
    is_error: bool


@dataclass(frozen=True)
class Prompt:
    system: str | None
    user: str


@dataclass
class McpSessionService:
    runs: RunService
    environments: EnvironmentService
    access: Access
    workflows: Workflows
    store: TraceStore

    async def open(self, caller: Caller, environment: str, wanted_id: str | None) -> str:
        """A new session's id: the client's trace id when it sends one that is a valid run
        id, else a fresh one. The run starts later, with its scenario."""
        self.access.project(caller, Scope.task_write)
        await self.environment(caller, environment)
        if wanted_id is not None and _valid_run_id(wanted_id):
            try:
                view = await self.access.run(caller, wanted_id, Need.commands)
            except NotFound:
                return wanted_id
            if not view.status.is_final:
                return wanted_id
        return uuid.uuid4().hex

    async def environment(self, caller: Caller, name: str) -> EnvironmentInfo:
        return await self.environments.get(caller, name)

    async def tools(self, session: Session) -> list[ToolInfo]:
        """The tools the session's run offers (its task's include and exclude lists held),
        or, before it starts, the environment's."""
        view = await self._started(session)
        if view is None and session.plan.chosen:
            view = await self._running(session)
        if view is None:
            return (await self.environment(session.caller, session.environment)).tools
        return await self._offered(session, view.run_id)

    async def start(self, session: Session, scenario: str, args: dict[str, Any]) -> Prompt:
        """Start the session's run of `scenario` (again: the same run) and return its prompt,
        once the scenario is set up."""
        view = await self._started(session)
        if view is not None and view.scenario != scenario:
            raise Conflict(
                f"session {session.session_id} plays scenario {view.scenario!r}; open another "
                f"session for {scenario!r}"
            )
        if view is None:
            plan = session.plan
            if plan.task is None:
                plan = replace(plan, scenario=scenario, args=args)
            else:
                await self._check_task(session, plan.task, scenario)
            view = await self._start(session, plan)
        return await self._prompt(session, view)

    async def call_tool(
        self, session: Session, name: str, arguments: dict[str, Any], key: str | None
    ) -> ToolOutcome:
        """Run one tool call as the next step of the session's run; a call repeated with
        the same idempotency key returns the first call's result without running again."""
        _check_arguments(name, arguments)
        call_id = _call_id(key)
        try:
            view = await self._running(session)
        except Conflict:
            # A retry of a call the run answered before it ended gets that answer.
            if (answered := await self._answered(session.session_id, call_id)) is not None:
                return answered
            raise
        call = ClientToolCall(call_id=call_id, name=name, arguments=arguments)
        try:
            ack = await self.workflows.update(
                view.workflow_id,
                CLIENT_TOOL_CALL_UPDATE,
                call,
                ClientToolCallAck,
                update_id=f"{view.run_id}-{call_id}",
            )
        except Conflict as refused:
            if (answered := await self._answered(view.run_id, call_id)) is not None:
                return answered
            raise Conflict(f"{refused.message}; open a new session to go on") from refused
        event = await self.store.event_by_key(view.run_id, tool_key(ack.step, ack.call_id))
        if event is None:
            raise Conflict(f"the result of {name} (step {ack.step}) is not recorded")
        message = Message.model_validate(event.data)
        return ToolOutcome(content=message.content, is_error=message.is_error)

    async def finish(self, session: Session, answer: str | None) -> RunView:
        """End the agent's turn with its answer (or none): the run is evaluated and ends.
        A session that has ended already is returned as it ended."""
        view = await self._started(session)
        if view is None:
            raise Invalid(
                ["params", "name"],
                f"session {session.session_id} has not started a scenario: get a scenario's "
                "prompt (prompts/get) first",
            )
        return await self._finished(session, view, answer)

    async def _finished(self, session: Session, view: RunView, answer: str | None) -> RunView:
        if not view.status.is_final:
            # A run that ended meanwhile (a stop tool, its deadline) is a Conflict: the
            # store says how it ended.
            with contextlib.suppress(Conflict):
                await self.workflows.update(
                    view.workflow_id, CLIENT_ANSWER_UPDATE, ClientAnswer(answer=answer), RunState
                )
        return await self.runs.get_run(session.caller, view.run_id)

    async def close(self, session: Session) -> None:
        """The client ended the session: a live run is evaluated with the answer it has."""
        view = await self._started(session)
        if view is not None and not view.status.is_final:
            await self._finished(session, view, None)

    async def enter_trace(self, caller: Caller, trace_id: str) -> None:
        """A client's trace begins; its run starts with its session's scenario."""
        self.access.project(caller, Scope.task_write)
        if not _valid_run_id(trace_id):
            raise Invalid(["path", "trace_id"], f"a trace id matches {RUN_ID_PATTERN}")

    async def exit_trace(self, caller: Caller, trace_id: str) -> None:
        """A client's trace ends: its run, if still live, is evaluated as it is."""
        await self.enter_trace(caller, trace_id)
        try:
            view = await self.access.run(caller, trace_id, Need.commands)
        except NotFound:
            return
        if view.model == CLIENT_MODEL:
            await self.close(Session(caller, view.environment, trace_id))

    # --- helpers -------------------------------------------------------------------------------

    async def _started(self, session: Session) -> RunView | None:
        if not _valid_run_id(session.session_id):
            raise NotFound(f"no session {session.session_id[:80]!r}: initialize a new one")
        try:
            view = await self.access.run(session.caller, session.session_id, Need.commands)
        except NotFound:
            return None
        if view.environment != session.environment or view.model != CLIENT_MODEL:
            raise NotFound(
                f"session {session.session_id} is not a session of {session.environment!r}"
            )
        return view

    async def _running(self, session: Session) -> RunView:
        """The session's run, started as its URL says when the client picked no scenario."""
        view = await self._started(session)
        if view is None:
            view = await self._start(session, session.plan)
            await self._ready(view)
        if view.status.is_final:
            raise Conflict(
                f"session {session.session_id} has ended ({view.status.value}, "
                f"{view.stop_reason.value if view.stop_reason else 'no reason'}); open a new "
                "session to go on"
            )
        return view

    async def _start(self, session: Session, plan: SessionPlan) -> RunView:
        options: dict[str, Any] = {
            "model": CLIENT_MODEL,
            "run_id": session.session_id,
            "input_timeout_seconds": DEFAULT_IDLE_SECONDS,
        }
        if plan.max_steps is not None:
            options["max_steps"] = plan.max_steps
        if plan.task is not None:
            await self._check_task(session, plan.task, None)
            view, _ = await self.runs.start_task_run(session.caller, plan.task, options)
            return view
        info = await self.environment(session.caller, session.environment)
        scenario = plan.scenario or _only_scenario(info)
        request = RunRequest(
            environment=session.environment,
            scenario=scenario,
            args=_typed_args(info, scenario, plan.args),
            **options,
        )
        view, _ = await self.runs.start_run(session.caller, request)
        return view

    async def _check_task(self, session: Session, task: str, scenario: str | None) -> None:
        """The session's task is one of its environment's, and of `scenario` if given."""
        _, definition = await self.runs.find_task(session.caller, task)
        if definition.env.name != session.environment:
            raise Invalid(
                ["query", "task"],
                f"task {task!r} is one of environment {definition.env.name!r}; serve it at "
                f"/v1/environments/{definition.env.name}/mcp",
            )
        if scenario is not None and definition.scenario != scenario:
            raise Invalid(
                ["params", "name"],
                f"this session plays task {task!r}, whose scenario is "
                f"{definition.scenario!r}, not {scenario!r}",
            )

    async def _answered(self, run_id: str, call_id: str) -> ToolOutcome | None:
        for event in await self.store.events(run_id, EventFilter(types=(EventType.message,))):
            message = Message.model_validate(event.data)
            if message.role == "tool" and message.tool_call_id == call_id:
                return ToolOutcome(content=message.content, is_error=message.is_error)
        return None

    async def _ready(self, view: RunView) -> None:
        await self.workflows.update(
            view.workflow_id, CLIENT_READY_UPDATE, RunRef(run_id=view.run_id), RunState
        )

    async def _prompt(self, session: Session, view: RunView) -> Prompt:
        if not view.status.is_final:
            await self._ready(view)
        setup = await self.store.event_by_key(view.run_id, SETUP_KEY)
        if setup is None:
            ended = await self.store.get_run(view.run_id)
            raise Conflict(
                f"the scenario of session {session.session_id} was not set up "
                f"({ended.status.value}): {ended.error or 'no error recorded'}"
            )
        system = await self.store.event_by_key(view.run_id, SYSTEM_PROMPT_KEY)
        return Prompt(
            system=Message.model_validate(system.data).content if system else None,
            user=Message.model_validate(setup.data).content,
        )

    async def _offered(self, session: Session, run_id: str) -> list[ToolInfo]:
        listed = await self.store.event_by_key(run_id, REMOTE_TOOLS_KEY)
        if listed is not None:
            return [ToolInfo.model_validate(tool) for tool in listed.data["tools"]]
        spec = await self.store.run_spec(run_id)
        info = await self.environment(session.caller, session.environment)
        return [tool for tool in info.tools if spec.offers(tool.name)]


def _only_scenario(info: EnvironmentInfo) -> str:
    if len(info.scenarios) == 1:
        return info.scenarios[0].name
    names = ", ".join(sorted(s.name for s in info.scenarios)) or "none"
    raise Invalid(
        ["params", "name"],
        f"environment {info.name!r} has several scenarios ({names}): pick one by getting its "
        "prompt (prompts/get) or with ?scenario= on the session's URL",
    )


def _typed_args(info: EnvironmentInfo, scenario: str, args: dict[str, Any]) -> dict[str, Any]:
    """MCP prompt arguments are strings: a string given for an argument of another type is
    read as JSON (a number, a list), as a client would have written it."""
    found = next((s for s in info.scenarios if s.name == scenario), None)
    if found is None:
        return args
    return {name: _typed(found, name, value) for name, value in args.items()}


def _valid_run_id(value: str) -> bool:
    return re.fullmatch(RUN_ID_PATTERN, value) is not None


def _call_id(key: str | None) -> str:
    """The step's call id: named by the client's key, so that a retry finds the call."""
    if key is None:
        return f"mcp-{uuid.uuid4().hex}"
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise Invalid(
            ["params", "_meta", "loopline/idempotency_key"],
            f"an idempotency key is 1-{MAX_KEY_CHARS} printable characters",
        )
    return f"mcp-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def _check_arguments(name: str, arguments: dict[str, Any]) -> None:
    size = len(json.dumps(arguments))
    if size > MAX_ARGS_BYTES:
        raise Invalid(
            ["params", "arguments"],
            f"the arguments of {name} are {size:,} bytes of JSON, over the limit of "
            f"{MAX_ARGS_BYTES:,}",
        )


def _typed(scenario: ScenarioInfo, name: str, value: Any) -> Any:
    declared = scenario.args_schema.get("properties", {}).get(name, {})
    if not isinstance(value, str) or declared.get("type", "string") == "string":
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
