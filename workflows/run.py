"""The run workflow: one agent episode, from setup to reward, as durable orchestration.

setup → loop { model step → tool calls } → evaluate → teardown (always).

The workflow keeps only counters and small state; the conversation lives in the trace store
and activities read it there, so history grows by a fixed amount per step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from activities.model_step import ModelActivities
    from activities.scenario import ScenarioActivities
    from activities.simulated_user import SimulatedUserActivities
    from activities.tools import ToolActivities
    from loopline.models import (
        CancelRequest,
        EvaluateInput,
        ModelStepResult,
        RunInput,
        RunResult,
        RunState,
        RunStatus,
        StepRef,
        StopReason,
        TeardownInput,
        ToolCallInput,
        UserTurnRef,
        UserTurnResult,
    )
    from loopline.temporal import REWARD, STATUS

# Setup, evaluation and teardown happen once per run: regular activities, each its own
# row in the UI, retried by the server, able to run on any worker.
LIFECYCLE_TIMEOUT = timedelta(minutes=10)
# The scripted model and in-process tools answer in milliseconds. As local activities they
# cost ~3 ms per call instead of ~31 ms for a regular activity round trip, and history
# records one marker per call. Their results are committed in the trace store under an
# idempotency key, so a call re-run after a crash returns what was recorded.
LOCAL_STEP_TIMEOUT = timedelta(minutes=2)
RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
# A provider call is slow and may be rate limited: a regular activity that any worker can
# pick up, heartbeating while it waits, retried with backoff (at least as long as a
# retry-after asks) a bounded number of times before the run fails with the provider's error.
MODEL_CALL_TIMEOUT = timedelta(minutes=15)
MODEL_HEARTBEAT_TIMEOUT = timedelta(seconds=30)
MODEL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=8,
)

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")


@workflow.defn(name="Run")
class RunWorkflow:
    @workflow.init
    def __init__(self, run: RunInput) -> None:
        self._run = run
        self._state = RunState(
            run_id=run.run_id, status=RunStatus.running, step=0, max_steps=run.max_steps
        )
        self._agent: asyncio.Task[StopReason] | None = None
        self._user_turns = 0
        # Live model text (see activities/token_stream.py) for subscribers of the run.
        self._stream = WorkflowStream()

    @workflow.run
    async def run(self, run: RunInput) -> RunResult:
        try:
            status, stop_reason, error = await self._episode()
        except asyncio.CancelledError:
            # Cancelled through Temporal itself (UI, CLI): tear down, then end as cancelled.
            await self._finish(RunStatus.cancelled, StopReason.cancelled, None)
            raise
        result = await self._finish(status, stop_reason, error)
        if status is RunStatus.failed:
            raise ApplicationError(error or "run failed", type="RunFailed", non_retryable=True)
        return result

    @workflow.query
    def state(self) -> RunState:
        return self._state

    @workflow.signal
    def cancel(self, request: CancelRequest) -> None:
        """Stop gracefully: the agent loop is interrupted, teardown still runs."""
        if self._state.cancel_requested:
            return
        self._state.cancel_requested = True
        workflow.logger.info("cancel requested: %s", request.reason)
        if self._agent is not None:
            self._agent.cancel()

    async def _episode(self) -> tuple[RunStatus, StopReason, str | None]:
        run = self._run
        try:
            self._details("setting up the scenario")
            await _lifecycle(
                ScenarioActivities.setup, run, f"setup {run.environment}/{run.scenario}"
            )
            if self._state.cancel_requested:
                return RunStatus.cancelled, StopReason.cancelled, None
            self._agent = asyncio.create_task(self._agent_loop())
            stop_reason = await self._until_deadline(self._agent)
            if stop_reason is StopReason.cancelled:
                return RunStatus.cancelled, stop_reason, None
            self._details("evaluating")
            evaluation = await _lifecycle(
                ScenarioActivities.evaluate,
                EvaluateInput(run_id=run.run_id, stop_reason=stop_reason),
                f"evaluate {run.scenario}",
            )
        except ActivityError as error:
            return RunStatus.failed, StopReason.error, _describe(error)
        self._state.reward = evaluation.reward
        return RunStatus.completed, stop_reason, None

    async def _until_deadline(self, agent: asyncio.Task[StopReason]) -> StopReason:
        try:
            return await asyncio.wait_for(agent, timeout=self._run.max_duration_seconds)
        except TimeoutError:
            return StopReason.deadline
        except asyncio.CancelledError:
            if not agent.cancelled() or not self._state.cancel_requested:
                raise
            return StopReason.cancelled

    async def _agent_loop(self) -> StopReason:
        run = self._run
        for step in range(1, run.max_steps + 1):
            self._state.step = step
            self._details(f"step {step}/{run.max_steps} · waiting on model {run.model}")
            reply = await self._model_step(step)
            if not reply.tool_calls:
                if not run.user_model:
                    return StopReason.answered
                if self._user_turns >= run.max_user_turns:
                    return StopReason.max_user_turns
                if (await self._user_turn(step)).done:
                    return StopReason.user_done
                continue
            for call in reply.tool_calls:
                self._details(f"step {step}/{run.max_steps} · running tool {call.name}")
                result = await _local(
                    ToolActivities.call_tool,
                    ToolCallInput(run_id=run.run_id, step=step, call_id=call.id),
                    f"tool {call.name}",
                )
                if result.stop:
                    return StopReason.stop_tool
        return StopReason.max_steps

    async def _model_step(self, step: int) -> ModelStepResult:
        run = self._run
        ref = StepRef(run_id=run.run_id, step=step, model=run.model)
        summary = f"step {step} · {run.model}"
        if run.model_is_local:
            return await _local(ModelActivities.model_step, ref, summary)
        return await _model_call(ModelActivities.model_step, ref, summary)

    async def _user_turn(self, step: int) -> UserTurnResult:
        run = self._run
        self._user_turns += 1
        self._details(f"step {step}/{run.max_steps} · waiting on the simulated user")
        ref = UserTurnRef(run_id=run.run_id, step=step, turn=self._user_turns)
        summary = f"user turn {self._user_turns} · {run.user_model}"
        if run.user_model_is_local:
            return await _local(SimulatedUserActivities.user_turn, ref, summary)
        return await _model_call(SimulatedUserActivities.user_turn, ref, summary)

    async def _finish(
        self, status: RunStatus, stop_reason: StopReason, error: str | None
    ) -> RunResult:
        run = self._run
        self._details("tearing down")
        await _lifecycle(
            ScenarioActivities.teardown,
            TeardownInput(
                run_id=run.run_id,
                status=status,
                stop_reason=stop_reason,
                steps=self._state.step,
                error=error,
            ),
            "teardown",
        )
        self._state.status = status
        self._state.stop_reason = stop_reason
        workflow.upsert_search_attributes([STATUS.value_set(status.value)])
        if self._state.reward is not None:
            workflow.upsert_search_attributes([REWARD.value_set(self._state.reward)])
        reward = "" if self._state.reward is None else f" · reward {self._state.reward:g}"
        self._details(f"{status.value} ({stop_reason.value}){reward}")
        return RunResult(
            run_id=run.run_id,
            status=status,
            stop_reason=stop_reason,
            steps=self._state.step,
            reward=self._state.reward,
            error=error,
        )

    def _details(self, text: str) -> None:
        self._state.waiting_on = text
        workflow.set_current_details(text)


async def _lifecycle(
    method: Callable[[Any, InputT], Awaitable[OutputT]], arg: InputT, summary: str
) -> OutputT:
    return await _cancellable(
        workflow.execute_activity_method(
            method,
            arg,
            start_to_close_timeout=LIFECYCLE_TIMEOUT,
            retry_policy=RETRY,
            summary=summary,
        )
    )


async def _local(
    method: Callable[[Any, InputT], Awaitable[OutputT]], arg: InputT, summary: str
) -> OutputT:
    return await _cancellable(
        workflow.execute_local_activity_method(
            method,
            arg,
            start_to_close_timeout=LOCAL_STEP_TIMEOUT,
            retry_policy=RETRY,
            summary=summary,
        )
    )


async def _model_call(
    method: Callable[[Any, InputT], Awaitable[OutputT]], arg: InputT, summary: str
) -> OutputT:
    return await _cancellable(
        workflow.execute_activity_method(
            method,
            arg,
            start_to_close_timeout=MODEL_CALL_TIMEOUT,
            heartbeat_timeout=MODEL_HEARTBEAT_TIMEOUT,
            retry_policy=MODEL_RETRY,
            summary=summary,
        )
    )


async def _cancellable(activity: Awaitable[OutputT]) -> OutputT:
    """Await an activity; one cut short by a cancellation re-raises that cancellation.

    The SDK reports an activity cancelled under us (cancel signal, deadline, a cancel sent
    through Temporal) as an ActivityError; it is the caller's cancellation, not a failure.
    """
    try:
        return await activity
    except ActivityError as error:
        if isinstance(error.cause, CancelledError):
            raise asyncio.CancelledError(str(error)) from error
        raise


def _describe(error: ActivityError) -> str:
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or error)
