"""Server-side tool calls, applied exactly once per call.

An in-process tool runs against the run's state: this worker's cached model when it is of
the stored version (activities/state_cache.py), else the state read and validated. Its
result event and the changed state (written only if its JSON changed, and only over the
version the call started from) are committed in one transaction under the call's
idempotency key. A retry (after a worker crash, say) finds that event and returns it
without running the tool again. A tool declared read-only is never checked or written; a
failed call's state is rolled back or kept, as the tool says (`on_error`).

A remote tool (MCP server, HTTP tool server) is called with that idempotency key, so a
retry after the server applied the call but before its result was recorded lets the
server drop the duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from temporalio import activity

from activities.base import StoreActivities, execution_key, remote_call_meta
from activities.errors import permanent, remote_failure
from activities.heartbeats import heartbeating
from activities.state_cache import CachedState, StateCache
from loopline.environment import Environment, ToolContext, ToolError
from loopline.environment.changes import StateChanges, dumped_changes, text_splice
from loopline.environment.registry import Registry
from loopline.environment.schemas import schema_problem
from loopline.environment.tools import Tool
from loopline.environment.toolservers import InvalidToolCall, ToolServer, ToolServerError
from loopline.models import (
    MAX_MESSAGE_CHARS,
    EventType,
    EventView,
    Message,
    RunSpec,
    ToolCall,
    ToolInfo,
)
from loopline.store import TraceStore
from loopline.store.rows import NewEvent, StatePatch, StateWrite
from workflows.contract import stubs
from workflows.contract.names import model_key, tool_key
from workflows.contract.payloads import ToolCallInput, ToolCallResult


class ToolActivities(StoreActivities):
    def __init__(
        self, store: TraceStore, registry: Registry, states: StateCache | None = None
    ) -> None:
        super().__init__(store, registry)
        self.states = states or StateCache()

    @activity.defn(name=stubs.CALL_TOOL.name)
    async def call_tool(self, request: ToolCallInput) -> ToolCallResult:
        async with heartbeating():
            return await self._call_tool(request)

    async def _call_tool(self, request: ToolCallInput) -> ToolCallResult:
        key = tool_key(request.step, request.call_id)
        reply_key = model_key(request.step)
        # The state's version only: the state itself may be in this worker's cache.
        snapshot = await self.store.snapshot(request.run_id, [key, reply_key])
        if key in snapshot.events:
            return ToolCallResult.model_validate(snapshot.events[key].data["outcome"])
        spec = await self.spec(request.run_id)
        call = _find_call(snapshot.events.get(reply_key), request)
        context = ToolContext(run_id=request.run_id, step=request.step, call_id=request.call_id)
        outcome = await self.run_call(spec, call, context, snapshot.state_version)
        [(recorded, wrote)] = await self.store.record_all(request.run_id, [outcome.event])
        if outcome.after is not None and wrote:
            self.states.put(execution_key(request.run_id), outcome.after)
        return ToolCallResult.model_validate(recorded.data["outcome"])

    async def run_call(
        self,
        spec: RunSpec,
        call: ToolCall,
        context: ToolContext,
        version: int,
        carried: CachedState | None = None,
    ) -> ToolOutcome:
        """Run the call against the state of `version` (`carried` when it is of that
        version, as a step's earlier call left it): the event that records its result and
        the state it leaves, neither yet written."""
        server = await self.tool_server(spec)
        if server is None:
            ran = await self._call_local(spec, call, context, version, carried)
        else:
            state = await self.store.load_state(context.run_id)
            ran = _Ran(*await self._call_remote(server, call, context, state))
        content, is_error = _within_limit(call, ran.content, ran.is_error)
        stop = ran.stop and not is_error
        write, after, changes = _state_after(ran, is_error)
        result = ToolCallResult(is_error=is_error, stop=stop)
        message = Message(
            role="tool", content=content, tool_call_id=call.id, name=call.name, is_error=is_error
        )
        data = {**message.model_dump(), "outcome": result.model_dump()}
        if changes is not None:
            data["state_changes"] = changes.model_dump(mode="json")
        event = NewEvent(
            tool_key(context.step, context.call_id),
            EventType.message,
            data,
            state=write,
            run_fields={"answer": content} if stop else None,
        )
        return ToolOutcome(event, result, after)

    async def _call_local(
        self,
        spec: RunSpec,
        call: ToolCall,
        context: ToolContext,
        version: int,
        carried: CachedState | None,
    ) -> _Ran:
        environment = self.environment(spec)
        offered = {name: tool for name, tool in environment.tools.items() if spec.offers(name)}
        tool = offered.get(call.name)
        before = await self._state_for(context.run_id, environment, tool, version, carried)
        state = before.model if before is not None else None
        content, is_error = await _invoke(offered, call, state, context)
        stop = tool is not None and tool.stop and not is_error
        return _Ran(content, is_error, stop, tool, before)

    async def _state_for(
        self,
        run_id: str,
        environment: Environment,
        tool: Tool | None,
        version: int,
        carried: CachedState | None,
    ) -> CachedState | None:
        """The state the tool is handed: `carried` or the cached one when it is of the
        stored `version`, else read and validated; None for a tool not handed the state."""
        state_type = environment.state_type
        if state_type is None or tool is None or not tool.uses_state:
            return None
        if carried is not None and carried.version == version:
            return carried
        cached = self.states.take(execution_key(run_id), version)
        if cached is not None:
            return cached
        stored, text = await self.store.state_text(run_id)
        if text is None:
            return None
        model = state_type.model_validate_json(text)
        dumped = model.model_dump_json()
        return CachedState(stored, model, dumped, stored=dumped == text)

    async def _call_remote(
        self,
        server: ToolServer,
        call: ToolCall,
        context: ToolContext,
        state: dict[str, Any] | None,
    ) -> tuple[str, bool]:
        """Call the tool on its server; what the model can fix comes back as an error
        result, what retrying may mend is retried, anything else fails the run."""
        offered = {tool.name: tool for tool in await self.remote_tools(context.run_id)}
        mistake = _call_mistake(offered, call)
        if mistake is not None:
            return mistake, True
        meta = remote_call_meta(context.run_id, context.idempotency_key, state)
        try:
            outcome = await server.call_tool(call.name, call.arguments, meta)
        except InvalidToolCall as error:
            return f"{call.name} was called wrongly: {error}", True
        except ToolServerError as error:
            raise remote_failure(f"tool {call.name}", error) from error
        return outcome.text, outcome.is_error


@dataclass(frozen=True)
class ToolOutcome:
    """A call's result and the event that records it, with the state the call leaves
    (None for a call not handed the state), for the cache once the event is written."""

    event: NewEvent
    result: ToolCallResult
    after: CachedState | None


@dataclass(frozen=True)
class _Ran:
    """A tool call's result, and for an in-process tool handed the state, that tool and the
    state it started from."""

    content: str
    is_error: bool
    stop: bool = False
    tool: Tool | None = None
    before: CachedState | None = None


def _state_after(
    ran: _Ran, is_error: bool
) -> tuple[StateWrite | None, CachedState | None, StateChanges | None]:
    """What the call writes, what the cache keeps, and the changes listed: a state written
    only when its JSON differs from the version the call started from."""
    before, tool = ran.before, ran.tool
    if before is None or tool is None:
        return None, None, None
    if tool.read_only:
        return None, before, None
    if is_error and tool.on_error == "rollback":
        # The stored state stays as it was; the model the tool may have changed is dropped
        # for one made again from the JSON it started from.
        model = type(before.model).model_validate_json(before.text)
        return None, CachedState(before.version, model, before.text, before.stored), None
    text = before.model.model_dump_json()
    if text == before.text:
        return None, before, None
    patch = _patch(before.text, text) if before.stored else None
    after = CachedState(before.version + 1, before.model, text, stored=True)
    changes = dumped_changes(before.model, before.text, text)
    return StateWrite(text, before.version, patch), after, changes


def _patch(before: str, after: str) -> StatePatch:
    start, before_end, after_end = text_splice(before, after)
    return StatePatch(at=start, removed=before_end - start, inserted=after[start:after_end])


def _within_limit(call: ToolCall, content: str, is_error: bool) -> tuple[str, bool]:
    """A result longer than a message may be goes back to the model as an error it can act
    on, not into the conversation (where every later step would carry it)."""
    if len(content) <= MAX_MESSAGE_CHARS:
        return content, is_error
    return (
        f"the result of {call.name} is {len(content):,} characters, over the limit of "
        f"{MAX_MESSAGE_CHARS:,}: call it so that it returns less",
        True,
    )


def _find_call(reply: EventView | None, request: ToolCallInput) -> ToolCall:
    calls = Message.model_validate(reply.data).tool_calls if reply else []
    for call in calls:
        if call.id == request.call_id:
            return call
    # The workflow only asks for calls the model step reported; no retry can mend this.
    raise permanent(
        f"step {request.step} of run {request.run_id} has no tool call {request.call_id!r}",
        "UnknownToolCall",
    )


def _call_mistake(offered: Mapping[str, Tool | ToolInfo], call: ToolCall) -> str | None:
    """What is wrong with the call before it is made, said so that the model can fix it."""
    tool = offered.get(call.name)
    if tool is None:
        available = ", ".join(sorted(offered)) or "none"
        return f"unknown tool {call.name!r}; available tools: {available}"
    if call.invalid_arguments is not None:
        return (
            f"the arguments of {call.name} are not valid JSON object text: "
            f"{call.invalid_arguments!r}; call it again with a JSON object"
        )
    if isinstance(tool, ToolInfo):
        problem = schema_problem(tool.parameters, call.arguments)
        if problem is not None:
            return f"invalid arguments for {call.name}: {problem}"
    return None


async def _invoke(
    offered: dict[str, Tool], call: ToolCall, state: BaseModel | None, context: ToolContext
) -> tuple[str, bool]:
    """Run the tool; errors the model can act on come back as an error result."""
    mistake = _call_mistake(offered, call)
    if mistake is not None:
        return mistake, True
    tool = offered[call.name]
    try:
        return await tool.invoke(call.arguments, state, context), False
    except ToolError as error:
        return str(error), True
    except Exception as error:
        activity.logger.warning("tool %s raised %s", call.name, type(error).__name__)
        return f"tool {call.name} failed: {type(error).__name__}: {error}", True
