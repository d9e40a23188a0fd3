"""What the caller puts into a run: user messages, results of client-side tools, and the
statuses the run shows while it waits for them."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.base import StoreActivities
from loopline.models import EventType, Message, RunStatus, ToolCall
from workflows.contract import stubs
from workflows.contract.names import message_key, model_key, resumed_key, tool_key, turn_running_key
from workflows.contract.payloads import (
    ClientStepInput,
    StatusChange,
    ToolResultsInput,
    UserMessagesInput,
)


class InputActivities(StoreActivities):
    @activity.defn(name=stubs.RECORD_STATUS.name)
    async def record_status(self, change: StatusChange) -> None:
        pending = await self._pending_calls(change)
        await self._status(change.run_id, change.key, change.status, pending)

    @activity.defn(name=stubs.RECORD_USER_MESSAGES.name)
    async def record_user_messages(self, request: UserMessagesInput) -> None:
        """Append the messages to the conversation (once per message id) and go on running."""
        for message in request.messages:
            content = Message(role="user", content=message.content)
            await self.store.record(
                request.run_id,
                message_key(message.message_id),
                EventType.message,
                {**content.model_dump(), "message_id": message.message_id},
            )
        await self._status(request.run_id, turn_running_key(request.turn), RunStatus.running)

    @activity.defn(name=stubs.RECORD_TOOL_RESULTS.name)
    async def record_tool_results(self, request: ToolResultsInput) -> None:
        """The caller's results, as tool messages answering the model's calls."""
        names = {call.id: call.name for call in request.calls}
        for result in request.results:
            message = Message(
                role="tool",
                content=result.content,
                tool_call_id=result.call_id,
                name=names[result.call_id],
                is_error=result.is_error,
            )
            await self.store.record(
                request.run_id,
                tool_key(request.step, result.call_id),
                EventType.message,
                {**message.model_dump(), "client_side": True},
            )
        await self._status(request.run_id, resumed_key(request.step), RunStatus.running)

    @activity.defn(name=stubs.RECORD_CLIENT_STEP.name)
    async def record_client_step(self, request: ClientStepInput) -> None:
        """A step of the agent in the caller, recorded where a model's reply would be: a
        tool call (which the tool step then answers) or the final answer."""
        call = request.call
        fields: dict[str, Any] = {"steps": request.step}
        if call is not None:
            tool_call = ToolCall(id=call.call_id, name=call.name, arguments=call.arguments)
            message = Message(role="assistant", tool_calls=[tool_call])
        else:
            message = Message(role="assistant", content=request.answer or "")
            fields["answer"] = request.answer
        await self.store.record(
            request.run_id,
            model_key(request.step),
            EventType.message,
            {**message.model_dump(), "client_side": True},
            run_fields=fields,
        )

    async def _pending_calls(self, change: StatusChange) -> list[dict[str, Any]] | None:
        """The calls the caller must answer, with their arguments (from the model's reply)."""
        if not change.pending_tool_calls:
            return None
        wanted = {call.id for call in change.pending_tool_calls}
        reply = await self.store.event_by_key(change.run_id, model_key(change.step))
        calls = Message.model_validate(reply.data).tool_calls if reply else []
        return [call.model_dump() for call in calls if call.id in wanted]

    async def _status(
        self,
        run_id: str,
        key: str,
        status: RunStatus,
        pending: list[dict[str, Any]] | None = None,
    ) -> None:
        fields = {"status": status.value, "pending_tool_calls": pending}
        await self.store.record(run_id, key, EventType.status, fields, run_fields=fields)
