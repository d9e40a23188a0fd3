"""Server-side tool calls of in-process environments, applied exactly once per call.

The tool runs against the state loaded from the store; its result event and the changed
state are committed in one transaction under the call's idempotency key. A retry (after a
worker crash, say) finds that event and returns it without running the tool again.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from activities.base import StoreActivities
from activities.errors import permanent
from activities.model_step import model_key
from loopline.environment import Tool, ToolContext, ToolError
from loopline.models import (
    MAX_MESSAGE_CHARS,
    EventType,
    EventView,
    Message,
    ToolCall,
    ToolCallInput,
    ToolCallResult,
)


def tool_key(step: int, call_id: str) -> str:
    return f"step-{step}:tool:{call_id}"


class ToolActivities(StoreActivities):
    @activity.defn(name="call_tool")
    async def call_tool(self, request: ToolCallInput) -> ToolCallResult:
        key = tool_key(request.step, request.call_id)
        reply_key = model_key(request.step)
        snapshot = await self.store.snapshot(request.run_id, [key, reply_key])
        if key in snapshot.events:
            return ToolCallResult.model_validate(snapshot.events[key].data["outcome"])
        spec = await self.spec(request.run_id)
        environment = self.environment(spec)
        call = _find_call(snapshot.events.get(reply_key), request)
        context = ToolContext(run_id=request.run_id, step=request.step, call_id=request.call_id)
        state = environment.load_state(snapshot.state)
        offered = {name: tool for name, tool in environment.tools.items() if spec.offers(name)}
        content, is_error = _within_limit(call, *await _invoke(offered, call, state, context))
        stop = not is_error and offered[call.name].stop
        outcome = ToolCallResult(is_error=is_error, stop=stop)
        message = Message(
            role="tool", content=content, tool_call_id=call.id, name=call.name, is_error=is_error
        )
        recorded, _ = await self.store.record(
            request.run_id,
            key,
            EventType.message,
            {**message.model_dump(), "outcome": outcome.model_dump()},
            state=None if is_error else state,
            run_fields={"answer": content} if stop else None,
        )
        return ToolCallResult.model_validate(recorded.data["outcome"])


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


async def _invoke(
    offered: dict[str, Tool], call: ToolCall, state: BaseModel | None, context: ToolContext
) -> tuple[str, bool]:
    """Run the tool; errors the model can act on come back as an error result."""
    tool = offered.get(call.name)
    if tool is None:
        available = ", ".join(sorted(offered)) or "none"
        return f"unknown tool {call.name!r}; available tools: {available}", True
    if call.invalid_arguments is not None:
        return (
            f"the arguments of {call.name} are not valid JSON object text: "
            f"{call.invalid_arguments!r}; call it again with a JSON object",
            True,
        )
    try:
        return await tool.invoke(call.arguments, state, context), False
    except ToolError as error:
        return str(error), True
    except Exception as error:
        activity.logger.warning("tool %s raised %s", call.name, type(error).__name__)
        return f"tool {call.name} failed: {type(error).__name__}: {error}", True
