"""Server-side tool calls, applied exactly once per call.

An in-process tool runs against the state loaded from the store; its result event and the
changed state are committed in one transaction under the call's idempotency key. A retry
(after a worker crash, say) finds that event and returns it without running the tool again.

A remote tool (MCP server, HTTP tool server) is called with that idempotency key, so a
retry after the server applied the call but before its result was recorded lets the
server drop the duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from temporalio import activity

from activities.base import StoreActivities, remote_call_meta
from activities.errors import permanent, remote_failure
from activities.heartbeats import heartbeating
from loopline.environment import ToolContext, ToolError
from loopline.environment.changes import StateChanges, state_changes
from loopline.environment.schemas import schema_problem
from loopline.environment.tools import Tool
from loopline.environment.toolservers import InvalidToolCall, ToolServer, ToolServerError
from loopline.models import MAX_MESSAGE_CHARS, EventType, EventView, Message, ToolCall, ToolInfo
from workflows.contract import stubs
from workflows.contract.names import model_key, tool_key
from workflows.contract.payloads import ToolCallInput, ToolCallResult


class ToolActivities(StoreActivities):
    @activity.defn(name=stubs.CALL_TOOL.name)
    async def call_tool(self, request: ToolCallInput) -> ToolCallResult:
        async with heartbeating():
            return await self._call_tool(request)

    async def _call_tool(self, request: ToolCallInput) -> ToolCallResult:
        key = tool_key(request.step, request.call_id)
        reply_key = model_key(request.step)
        snapshot = await self.store.snapshot(request.run_id, [key, reply_key])
        if key in snapshot.events:
            return ToolCallResult.model_validate(snapshot.events[key].data["outcome"])
        spec = await self.spec(request.run_id)
        call = _find_call(snapshot.events.get(reply_key), request)
        context = ToolContext(run_id=request.run_id, step=request.step, call_id=request.call_id)
        server = await self.tool_server(spec)
        if server is None:
            environment = self.environment(spec)
            state = environment.load_state(snapshot.state)
            offered = {name: tool for name, tool in environment.tools.items() if spec.offers(name)}
            result = await _invoke(offered, call, state, context)
            stop = not result[1] and offered[call.name].stop
        else:
            state = None
            result = await self._call_remote(server, call, context, snapshot.state)
            stop = False
        content, is_error = _within_limit(call, *result)
        stop = stop and not is_error
        outcome = ToolCallResult(is_error=is_error, stop=stop)
        message = Message(
            role="tool", content=content, tool_call_id=call.id, name=call.name, is_error=is_error
        )
        data = {**message.model_dump(), "outcome": outcome.model_dump()}
        changes = None if is_error or state is None else _changes(snapshot.state, state)
        if changes is not None:
            data["state_changes"] = changes.model_dump(mode="json")
        recorded, _ = await self.store.record(
            request.run_id,
            key,
            EventType.message,
            data,
            state=None if is_error else state,
            run_fields={"answer": content} if stop else None,
        )
        return ToolCallResult.model_validate(recorded.data["outcome"])

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


def _changes(before: dict[str, Any] | None, after: BaseModel) -> StateChanges | None:
    return state_changes(before, after.model_dump(mode="json"))


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
