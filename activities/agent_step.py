"""One step of an episode whose tools run in this process, as one activity: the model's
reply and its server-side tool calls, committed in one transaction.

Each call keeps its own event under its own idempotency key, and each state change its own
version, as when they run as activities of their own (activities/tools.py). An attempt cut
short commits none of the step's events, so its retry asks the scripted model again and
runs the calls against the state the step started from; a provider's reply, paid for, is
committed on its own before the calls run, so a retry never asks for it twice. A retry
after a commit finds what it wrote and runs none of it again, and of two attempts that
overlap (one timed out but still running) only the first to commit is kept: the other
returns what that one recorded.

The scripted model's step is a local activity; a provider's a regular one on the task queue
of its model calls (workflows/run.py, _model_call), heartbeating while the tools run."""

from __future__ import annotations

from dataclasses import replace

from temporalio import activity

from activities.base import execution_key
from activities.heartbeats import heartbeating
from activities.model_step import ModelActivities, step_result
from activities.state_cache import CachedState
from activities.tools import ToolActivities
from loopline.environment import ToolContext
from loopline.models import Message, Provider, RunSpec, ToolCall
from loopline.store.rows import NewEvent
from loopline.store.trace import Snapshot
from workflows.contract import stubs
from workflows.contract.names import model_key, tool_key
from workflows.contract.payloads import AgentStepInput, AgentStepResult, StepRef, ToolCallResult


class AgentStepActivities:
    def __init__(self, model: ModelActivities, tools: ToolActivities) -> None:
        self.model = model
        self.tools = tools
        self.store = tools.store

    @activity.defn(name=stubs.AGENT_STEP.name)
    async def agent_step(self, request: AgentStepInput) -> AgentStepResult:
        async with heartbeating():
            return await self._agent_step(request)

    async def _agent_step(self, request: AgentStepInput) -> AgentStepResult:
        run_id = request.run_id
        # The model's cache of specs: its reply reads the spec there too.
        spec = await self.model.spec(run_id)
        message, snapshot, entries = await self._reply(request, spec)
        result = step_result(message)
        # A repeat that ends the run as looping runs none of its calls.
        looping = request.stop_if_repeated is not None and (
            result.calls_signature == request.stop_if_repeated
        )
        calls = [] if looping else _server_side(spec, message.tool_calls)
        stopped, carried = await self._run_calls(request, spec, calls, snapshot, entries)
        if not entries:
            return AgentStepResult(reply=result, stopped=stopped)
        if not await self.store.record_attempt(run_id, entries):
            # Another attempt of this step committed first: the step is what it recorded.
            return await self._agent_step(request)
        if carried is not None:
            self.tools.states.put(execution_key(run_id), carried)
        return AgentStepResult(reply=result, stopped=stopped)

    async def _reply(
        self, request: AgentStepInput, spec: RunSpec
    ) -> tuple[Message, Snapshot, list[NewEvent]]:
        """The step's reply, what is recorded of its calls, and what is left to commit. A
        scripted reply is asked for again until it commits with its calls; a provider's is
        committed at once, and the one recorded first is the step's."""
        run_id, step = request.run_id, request.step
        snapshot = await self.store.snapshot(run_id, [model_key(step)])
        recorded = snapshot.events.get(model_key(step))
        if recorded is None:
            reply = await self.model.reply(StepRef(run_id=run_id, step=step, model=request.model))
            # The calls run as they are recorded, with any sealed secret taken out.
            reply = replace(reply, data=self.store.scrub(run_id, reply.data))
            if spec.agent_model(step).provider is Provider.scripted:
                return Message.model_validate(reply.data), snapshot, [reply]
            [(recorded, wrote)] = await self.store.record_all(run_id, [reply])
            if wrote:
                return Message.model_validate(recorded.data), snapshot, []
        message = Message.model_validate(recorded.data)
        keys = [tool_key(step, call.id) for call in message.tool_calls]
        return message, await self.store.snapshot(run_id, keys), []

    async def _run_calls(
        self,
        request: AgentStepInput,
        spec: RunSpec,
        calls: list[ToolCall],
        snapshot: Snapshot,
        entries: list[NewEvent],
    ) -> tuple[bool, CachedState | None]:
        """Run the calls in order until a stop tool, each against the state the one before
        left, adding their events to `entries` (a call recorded before is not run again);
        whether one stopped, and the state left."""
        carried: CachedState | None = None
        version = snapshot.state_version
        for call in calls:
            prior = snapshot.events.get(tool_key(request.step, call.id))
            if prior is not None:
                outcome = ToolCallResult.model_validate(prior.data["outcome"])
            else:
                context = ToolContext(run_id=request.run_id, step=request.step, call_id=call.id)
                ran = await self.tools.run_call(spec, call, context, version, carried)
                entries.append(ran.event)
                version += ran.event.state is not None
                carried = ran.after or carried
                outcome = ran.result
            if outcome.stop:
                return True, carried
        return False, carried


def _server_side(spec: RunSpec, calls: list[ToolCall]) -> list[ToolCall]:
    """The calls this step runs: those of the caller's own tools wait for the caller."""
    client = {tool.name for tool in spec.client_tools}
    return [call for call in calls if call.name not in client]
