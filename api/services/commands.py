"""What callers tell a run: messages, client tool results, cancel, close, relayed messages,
and what they attach to it (logs, fields they own). The workflow owns a run's status; a
caller may only ask it to end."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from api.services.access import Access, Caller, Need
from api.services.errors import Conflict, Invalid
from api.services.workflows import Workflows
from loopline.models import (
    AppendLogResult,
    CancelRequest,
    CloseRequest,
    ContinueAck,
    ContinueRequest,
    EventType,
    LogEntry,
    MessageAck,
    RelayAck,
    RunPatch,
    RunStatus,
    RunView,
    UserMessageRequest,
)
from loopline.store import TraceStore
from workflows.contract.names import (
    CANCEL_SIGNAL,
    CLOSE_SIGNAL,
    CONTINUE_UPDATE,
    RELAY_WORKFLOW,
    USER_MESSAGE_UPDATE,
    relay_workflow_id,
)
from workflows.contract.payloads import RelayMessage, UserMessage

# How long a continue waits for a run the store shows awaiting_input to wait again in its
# workflow: a dead worker's workflow task times out after 10 s, then a new one replays it.
CONTINUE_GRACE_SECONDS = 30.0
CONTINUE_RETRY_SECONDS = 0.5
ModelT = TypeVar("ModelT", bound=BaseModel)


class UnknownCommand(Invalid):
    """A JSON-RPC method that no run takes."""


# The JSON-RPC methods a run takes, with the model of their params.
CommandParams = UserMessageRequest | CancelRequest | CloseRequest
COMMAND_PARAMS: dict[str, type[CommandParams]] = {
    "user_message": UserMessageRequest,
    "cancel": CancelRequest,
    "close": CloseRequest,
}


@dataclass
class CommandService:
    store: TraceStore
    access: Access
    workflows: Workflows
    relay_webhooks: dict[str, str]

    async def cancel(self, caller: Caller, run_id: str, request: CancelRequest) -> RunView:
        view = await self._live_run(caller, run_id)
        await self.workflows.signal(view.workflow_id, CANCEL_SIGNAL, request)
        return await self.store.get_run(run_id)

    async def close(self, caller: Caller, run_id: str, request: CloseRequest) -> RunView:
        view = await self._live_run(caller, run_id)
        await self.workflows.signal(view.workflow_id, CLOSE_SIGNAL, request)
        return await self.store.get_run(run_id)

    async def send_message(
        self, caller: Caller, run_id: str, request: UserMessageRequest
    ) -> MessageAck:
        view = await self._live_run(caller, run_id)
        message = UserMessage(
            message_id=request.message_id or uuid.uuid4().hex, content=request.content
        )
        # The workflow dedupes by message id across continue-as-new and says so in its
        # answer; Temporal's own update-id dedupe would not (it ends with each run).
        return await self.workflows.update(
            view.workflow_id, USER_MESSAGE_UPDATE, message, MessageAck
        )

    async def continue_run(self, caller: Caller, run_id: str, request: ContinueRequest) -> RunView:
        """Hand in client tool results; returns once the run has recorded them."""
        view = await self._live_run(caller, run_id)
        deadline = asyncio.get_running_loop().time() + CONTINUE_GRACE_SECONDS
        while True:
            try:
                await self.workflows.update(view.workflow_id, CONTINUE_UPDATE, request, ContinueAck)
                return await self.store.get_run(run_id)
            except Conflict:
                # A worker that took the run over after a crash replays it before it waits
                # again; meanwhile the store already said awaiting_input. Give it the time.
                view = await self.store.get_run(run_id)
                late = asyncio.get_running_loop().time() > deadline
                if view.status is not RunStatus.awaiting_input or late:
                    raise
            await asyncio.sleep(CONTINUE_RETRY_SECONDS)

    async def run_command(
        self, caller: Caller, run_id: str, method: str, params: dict[str, Any]
    ) -> Any:
        """A command by name (the JSON-RPC `command` of the task-runs API)."""
        model = COMMAND_PARAMS.get(method)
        if model is None:
            names = ", ".join(COMMAND_PARAMS)
            raise UnknownCommand(["body", "method"], f"unknown method {method!r}; use {names}")
        request = _params(model, params)
        if isinstance(request, UserMessageRequest):
            ack = await self.send_message(caller, run_id, request)
            return ack.model_dump(mode="json")
        if isinstance(request, CancelRequest):
            view = await self.cancel(caller, run_id, request)
        else:
            view = await self.close(caller, run_id, request)
        return {"run_id": run_id, "status": view.status.value}

    async def relay_message(
        self, caller: Caller, run_id: str, text: str, message_id: str | None
    ) -> RelayAck:
        """Queue `text` for the run's project relay webhook (delivered by a workflow)."""
        view = await self.access.run(caller, run_id, Need.write)
        if view.project not in self.relay_webhooks:
            raise Invalid(
                ["body", "text"],
                f"project {view.project!r} has no relay webhook: add it to "
                "LOOPLINE_RELAY_WEBHOOKS (a JSON map of project to URL) on the API and workers",
            )
        message = RelayMessage(
            message_id=message_id or uuid.uuid4().hex,
            project=view.project,
            run_id=run_id,
            task=view.task,
            text=text,
        )
        workflow_id = relay_workflow_id(run_id, message.message_id)
        await self.workflows.start_once(
            RELAY_WORKFLOW, message, workflow_id, f"relay a message of run {run_id}"
        )
        return RelayAck(message_id=message.message_id, workflow_id=workflow_id)

    async def append_logs(
        self, caller: Caller, run_id: str, entries: list[LogEntry]
    ) -> AppendLogResult:
        await self.access.run(caller, run_id, Need.commands)
        written = await self.store.append(
            run_id,
            [
                (
                    f"log:{entry.entry_id or uuid.uuid4().hex}",
                    EventType.log,
                    entry.model_dump(mode="json", exclude_none=True),
                )
                for entry in entries
            ],
        )
        appended = sum(written)
        return AppendLogResult(appended=appended, duplicates=len(written) - appended)

    async def patch_run(self, caller: Caller, run_id: str, patch: RunPatch) -> RunView:
        await self.access.run(caller, run_id, Need.write)
        fields = patch.model_dump(mode="json", exclude_unset=True)
        status = fields.pop("status", None)
        if status is not None:
            await self._apply_status(caller, run_id, RunStatus(status))
        if fields:
            await self.store.patch_run(run_id, fields, f"patch:{uuid.uuid4().hex}", fields)
        return await self.store.get_run(run_id)

    async def _apply_status(self, caller: Caller, run_id: str, status: RunStatus) -> None:
        if status is RunStatus.cancelled:
            await self.cancel(caller, run_id, CancelRequest(reason="status set to cancelled"))
            return
        view = await self.store.get_run(run_id)
        if status is RunStatus.completed and view.session:
            await self.close(caller, run_id, CloseRequest(reason="status set to completed"))
            return
        raise Invalid(
            ["body", "status"],
            f"status {status.value!r} cannot be set: the run's workflow owns its status. "
            "Set 'cancelled' to cancel a run, or 'completed' to close a session.",
        )

    async def _live_run(self, caller: Caller, run_id: str) -> RunView:
        view = await self.access.run(caller, run_id, Need.commands)
        if view.status.is_final:
            raise Conflict(f"run {run_id!r} has already ended ({view.status.value})")
        return view


def _params(model: type[ModelT], params: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(params)
    except ValidationError as error:
        item = error.errors()[0]
        where = ".".join(str(part) for part in item["loc"]) or "params"
        message = f"invalid params: {where}: {item['msg']}"
        raise Invalid(["body", "params", *item["loc"]], message) from None
