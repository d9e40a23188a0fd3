"""The run workflow: one agent episode, from setup to reward, as durable orchestration.

setup → turns of { model step → tool calls, server-side or the caller's } → evaluate →
teardown (always). A session waits for the next user message after each answer and
continues as new at such an idle point when its history grows long.

The workflow keeps only counters and small state; the conversation lives in the trace store
and activities read it there, so history grows by a fixed amount per step.

It is one class of ~500 lines: its signals, updates and agent loop share that state, and
reading them together is how a replay-safe change is checked.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta
from typing import NoReturn, TypeVar

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from loopline.models import (
        CancelRequest,
        CloseRequest,
        ContinueAck,
        ContinueRequest,
        MessageAck,
        RunStatus,
        StopReason,
        ToolResult,
    )
    from workflows.calls import describe, execute
    from workflows.contract import ActivityPolicy, ActivityStub, policies, stubs
    from workflows.contract.names import (
        ANSWER_UPDATES_FIRST_PATCH,
        CANCEL_SIGNAL,
        CLIENT_ANSWER_UPDATE,
        CLIENT_READY_UPDATE,
        CLIENT_TOOL_CALL_UPDATE,
        CLOSE_SIGNAL,
        CONTINUE_UPDATE,
        LOCAL_FAILURE_PATCH,
        LOCAL_LIFECYCLE_PATCH,
        NOT_ACCEPTING,
        NOT_AWAITING,
        NOT_CLIENT_AGENT,
        ONE_ACTIVITY_STEP_PATCH,
        REWARD,
        RUN_FAILED,
        RUN_WORKFLOW,
        STATE_QUERY,
        STATUS,
        TOO_MANY_STEPS,
        USER_MESSAGE_UPDATE,
        WRONG_TOOL_CALLS,
        awaiting_key,
        idle_key,
    )
    from workflows.contract.payloads import (
        AgentStepInput,
        AgentStepResult,
        ClientAnswer,
        ClientStepInput,
        ClientToolCall,
        ClientToolCallAck,
        EvaluateInput,
        ModelStepResult,
        RunInput,
        RunRef,
        RunResult,
        RunState,
        SessionCarry,
        StatusChange,
        StepRef,
        TeardownInput,
        ToolCallInput,
        ToolCallRef,
        ToolCallResult,
        ToolResultsInput,
        UserMessage,
        UserMessagesInput,
        UserTurnRef,
        UserTurnResult,
    )

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")
# A session waits for the next message after these; other endings end it.
SESSION_TURN_ENDS = frozenset({StopReason.answered, StopReason.max_steps})
# Message ids remembered for deduplication, carried across continue-as-new.
RECENT_MESSAGE_IDS = 1000


@workflow.defn(name=RUN_WORKFLOW)
class RunWorkflow:
    @workflow.init
    def __init__(self, run: RunInput) -> None:
        carry = run.carry
        self._run = run
        self._state = RunState(
            run_id=run.run_id,
            status=RunStatus.running,
            step=carry.step if carry else 0,
            max_steps=run.max_steps,
            session=run.session,
            turns=carry.turns if carry else 0,
            close_requested=carry.close_requested if carry else False,
        )
        self._agent: asyncio.Task[StopReason | None] | None = None
        self._user_turns = 0
        self._queue: list[UserMessage] = list(carry.queued_messages) if carry else []
        self._recent_ids: list[str] = list(carry.recent_message_ids) if carry else []
        self._tool_results: list[ToolResult] | None = None
        self._answered_step = 0
        self._unanswered_updates = False
        self._accepting = True
        self._last_calls: str | None = None
        self._repeated_calls = 0
        self._set_up = run.carry is not None
        self._ended = False
        # An agent in the caller: its calls by id (one step each), taken one at a time.
        self._client_calls: dict[str, ClientToolCallAck] = {}
        self._client_lock = asyncio.Lock()
        self._client_answer: ClientAnswer | None = None
        self._client_stop: StopReason | None = None
        self._client_error: ActivityError | None = None
        if carry is not None:
            self._deadline = carry.deadline
        elif run.max_duration_seconds is not None:
            self._deadline = workflow.now() + timedelta(seconds=run.max_duration_seconds)
        else:
            self._deadline = None
        # Live model text (see activities/token_stream.py) for subscribers of the run.
        self._stream = WorkflowStream(prior_state=carry.stream if carry else None)

    @workflow.run
    async def run(self, run: RunInput) -> RunResult:
        if run.carry is None:
            self._count("loopline_runs_started", "Runs started (not counting continue-as-new)")
        try:
            outcome = await self._episode()
        except asyncio.CancelledError:
            # Cancelled through Temporal itself (UI, CLI): tear down, then end as cancelled.
            await self._finish(RunStatus.cancelled, StopReason.cancelled, None)
            raise
        if outcome is None:
            await self._continue_as_new()
        status, stop_reason, error = outcome
        result = await self._finish(status, stop_reason, error)
        if status is RunStatus.failed:
            raise ApplicationError(error or "run failed", type=RUN_FAILED, non_retryable=True)
        return result

    @workflow.query(name=STATE_QUERY)
    def state(self) -> RunState:
        self._state.queued_messages = len(self._queue)
        return self._state

    @workflow.signal(name=CANCEL_SIGNAL)
    def cancel(self, request: CancelRequest) -> None:
        """Stop gracefully: the agent loop is interrupted, teardown still runs."""
        if self._state.cancel_requested:
            return
        self._state.cancel_requested = True
        self._accepting = False
        workflow.logger.info("cancel requested: %s", request.reason)
        if self._agent is not None:
            self._agent.cancel()

    @workflow.signal(name=CLOSE_SIGNAL)
    def close(self, request: CloseRequest) -> None:
        """End a session once the agent has answered what it was asked last."""
        if not self._state.close_requested:
            workflow.logger.info("close requested: %s", request.reason)
        self._state.close_requested = True
        self._accepting = False

    @workflow.update(name=USER_MESSAGE_UPDATE)
    def user_message(self, message: UserMessage) -> MessageAck:
        """Queue a message for the agent's next step; an id seen before is acknowledged
        again without queueing it twice."""
        duplicate = message.message_id in self._recent_ids
        if not duplicate:
            self._recent_ids = [*self._recent_ids, message.message_id][-RECENT_MESSAGE_IDS:]
            self._queue.append(message)
            self._unanswered_updates = True
        return MessageAck(
            run_id=self._run.run_id, message_id=message.message_id, duplicate=duplicate
        )

    @user_message.validator
    def _accepts_messages(self, message: UserMessage) -> None:
        if not self._accepting and message.message_id not in self._recent_ids:
            raise ApplicationError(
                f"run {self._run.run_id} takes no more messages: {self._why_not_accepting()}",
                type=NOT_ACCEPTING,
            )

    @workflow.update(name=CONTINUE_UPDATE)
    async def continue_with_results(self, request: ContinueRequest) -> ContinueAck:
        """Hand in the results of the pending client-side tool calls; returns once they are
        recorded and the agent goes on."""
        step = self._state.step
        self._tool_results = request.tool_results
        self._unanswered_updates = True
        await workflow.wait_condition(lambda: self._answered_step >= step or not self._accepting)
        return ContinueAck(step=step)

    @continue_with_results.validator
    def _expects_these_results(self, request: ContinueRequest) -> None:
        pending = self._state.pending_tool_calls
        if not pending or self._tool_results is not None or self._state.cancel_requested:
            raise ApplicationError(
                f"run {self._run.run_id} is not waiting for tool results "
                f"(status {self._state.status.value})",
                type=NOT_AWAITING,
            )
        problem = _mismatch(
            [call.id for call in pending], [r.call_id for r in request.tool_results]
        )
        if problem:
            raise ApplicationError(problem, type=WRONG_TOOL_CALLS)

    @workflow.update(name=CLIENT_READY_UPDATE)
    async def client_ready(self, ref: RunRef) -> RunState:
        """Returns once the scenario is set up (its prompt recorded) or the run has ended."""
        await workflow.wait_condition(lambda: self._set_up or self._ended)
        return self.state()

    @client_ready.validator
    def _ready_for_client(self, ref: RunRef) -> None:
        self._agent_is_client()

    def _agent_is_client(self) -> None:
        if not self._run.agent_is_client:
            raise ApplicationError(
                f"run {self._run.run_id} has its own agent ({self._run.model}); only a run "
                "whose agent is the client takes tool calls and answers from it",
                type=NOT_CLIENT_AGENT,
            )

    @workflow.update(name=CLIENT_TOOL_CALL_UPDATE)
    async def client_tool_call(self, call: ClientToolCall) -> ClientToolCallAck:
        """Run the caller's tool call as the next step; a call id seen before is answered
        with where its result is, without running it again."""
        await workflow.wait_condition(lambda: self._set_up or self._ended)
        async with self._client_lock:
            known = self._client_calls.get(call.call_id)
            if known is not None:
                return known
            # Checked again: calls sent together all passed the validator.
            self._refuse_a_new_call()
            self._state.step += 1
            step = self._state.step
            self._details(f"step {step}/{self._run.max_steps} · running tool {call.name}")
            try:
                await self._record_client_step(step, call=call)
                request = ToolCallInput(run_id=self._run.run_id, step=step, call_id=call.call_id)
                result = await self._tool_call(request, call.name)
            except ActivityError as error:
                self._client_error = error
                raise ApplicationError(describe(error), type=RUN_FAILED) from error
            ack = ClientToolCallAck(
                step=step, call_id=call.call_id, is_error=result.is_error, stop=result.stop
            )
            self._client_calls[call.call_id] = ack
            if result.stop:
                self._client_stop = StopReason.stop_tool
            return ack

    @client_tool_call.validator
    def _takes_client_calls(self, call: ClientToolCall) -> None:
        self._agent_is_client()
        if call.call_id not in self._client_calls:
            self._refuse_a_new_call()

    def _refuse_a_new_call(self) -> None:
        if not self._accepting:
            raise ApplicationError(
                f"run {self._run.run_id} takes no more tool calls: {self._why_not_accepting()}",
                type=NOT_ACCEPTING,
            )
        if self._state.step >= self._run.max_steps:
            raise ApplicationError(
                f"run {self._run.run_id} has used its {self._run.max_steps} steps (max_steps): "
                "answer now to have the run evaluated",
                type=TOO_MANY_STEPS,
            )

    @workflow.update(name=CLIENT_ANSWER_UPDATE)
    async def client_answer(self, answer: ClientAnswer) -> RunState:
        """End the caller's turn with its answer; returns the run once it is evaluated and
        has ended (the first answer counts; a later one returns the same)."""
        if self._client_answer is None and self._accepting:
            self._client_answer = answer
        await workflow.wait_condition(lambda: self._ended)
        return self.state()

    @client_answer.validator
    def _takes_the_answer(self, answer: ClientAnswer) -> None:
        # One after the turn ended (a stop tool, the deadline) is not recorded: it returns
        # the run once that has ended, evaluated.
        self._agent_is_client()

    async def _episode(self) -> tuple[RunStatus, StopReason, str | None] | None:
        run = self._run
        try:
            if run.carry is None:
                self._details("setting up the scenario")
                await execute(
                    stubs.SETUP,
                    run,
                    self._lifecycle(policies.lifecycle(run.remote), policies.LOCAL_LIFECYCLE),
                    f"setup {run.environment}/{run.scenario}",
                )
            self._set_up = True
            if self._state.cancel_requested:
                return RunStatus.cancelled, StopReason.cancelled, None
            self._agent = asyncio.create_task(self._conversation())
            stop_reason = await self._until_deadline(self._agent)
            self._accepting = False
            if run.agent_is_client:
                # A deadline or a cancel cut the agent short: its call in flight ends first.
                await self._client_calls_done()
            if stop_reason is None:
                return None
            if stop_reason is StopReason.cancelled:
                return RunStatus.cancelled, stop_reason, None
            await self._judge()
            self._details("evaluating")
            evaluation = await execute(
                stubs.EVALUATE,
                EvaluateInput(run_id=run.run_id, stop_reason=stop_reason),
                self._lifecycle(policies.lifecycle(run.remote), policies.LOCAL_LIFECYCLE),
                f"evaluate {run.scenario}",
            )
        except ActivityError as error:
            return RunStatus.failed, StopReason.error, describe(error)
        except ApplicationError as error:
            # A local activity's failure is raised as its ApplicationError itself; before
            # the patch, it failed the workflow without a teardown.
            if not workflow.patched(LOCAL_FAILURE_PATCH):
                raise
            return RunStatus.failed, StopReason.error, describe(error)
        self._state.reward = evaluation.reward
        return RunStatus.completed, stop_reason, None

    def _lifecycle(self, regular: ActivityPolicy, local: ActivityPolicy) -> ActivityPolicy:
        """Setup, evaluation and teardown of an in-process environment as local activities
        (see policies.LOCAL_LIFECYCLE); a remote one's stay regular, heartbeating. A run
        that started before the change keeps regular ones: the patch is decided once, at
        its first lifecycle activity."""
        if self._run.remote is None and workflow.patched(LOCAL_LIFECYCLE_PATCH):
            return local
        return regular

    async def _judge(self) -> None:
        run = self._run
        if run.judge_model is None:
            return
        self._details(f"judging the rubric · {run.judge_model}")
        ref = RunRef(run_id=run.run_id)
        summary = f"judge · {run.judge_model}"
        local = run.judge_model_is_local
        await self._model_call(stubs.JUDGE, ref, summary, run.judge_model, local)

    async def _until_deadline(self, agent: asyncio.Task[StopReason | None]) -> StopReason | None:
        timeout = None
        if self._deadline is not None:
            timeout = max(0.0, (self._deadline - workflow.now()).total_seconds())
        try:
            return await asyncio.wait_for(agent, timeout=timeout)
        except TimeoutError:
            return StopReason.deadline
        except asyncio.CancelledError:
            if not agent.cancelled() or not self._state.cancel_requested:
                raise
            return StopReason.cancelled

    async def _conversation(self) -> StopReason | None:
        """The agent's turns; a session waits for the next message after each answer.

        Returns None when a session should continue as new (idle, history long)."""
        if self._run.agent_is_client:
            return await self._client_agent()
        # A continued session was idle when it handed over.
        reason = StopReason.answered if self._run.carry else await self._turn()
        while self._run.session and reason in SESSION_TURN_ENDS:
            if self._history_is_long():
                return None
            if not await self._wait_for_message():
                return StopReason.closed if self._state.close_requested else StopReason.idle_timeout
            reason = await self._turn()
        return reason

    async def _turn(self) -> StopReason:
        """Model steps until the agent answers, stops or runs out of steps."""
        run = self._run
        for turn_step in range(1, run.max_steps + 1):
            self._state.step += 1
            step = self._state.step
            await self._deliver_messages()
            self._details(f"step {turn_step}/{run.max_steps} · waiting on model {run.model}")
            outcome = await self._model_step(step)
            reply = outcome.reply
            if reply.empty:
                return StopReason.empty_reply
            if not reply.tool_calls:
                if not run.user_model:
                    return StopReason.answered
                if self._user_turns >= run.max_user_turns:
                    return StopReason.max_user_turns
                if (await self._user_turn(step)).done:
                    return StopReason.user_done
                continue
            if self._looping(reply):
                return StopReason.repeated_tool_call
            client_calls = [call for call in reply.tool_calls if call.name in run.client_tools]
            if await self._stopped_by_a_tool(step, turn_step, outcome):
                return StopReason.stop_tool
            if client_calls and not await self._results_of(step, client_calls):
                return StopReason.input_timeout
        return StopReason.max_steps

    async def _stopped_by_a_tool(self, step: int, turn_step: int, outcome: AgentStepResult) -> bool:
        """Whether a stop tool among the reply's server-side calls ended the turn; the calls
        run here, one activity each, unless the step ran them."""
        if outcome.tools_ran:
            return outcome.stopped
        for call in outcome.reply.tool_calls:
            if call.name in self._run.client_tools:
                continue
            self._details(f"step {turn_step}/{self._run.max_steps} · running tool {call.name}")
            request = ToolCallInput(run_id=self._run.run_id, step=step, call_id=call.id)
            if (await self._tool_call(request, call.name)).stop:
                return True
        return False

    async def _client_agent(self) -> StopReason:
        """The caller is the agent: its tool calls run as steps as they arrive (see
        client_tool_call); the turn ends with its answer, a stop tool, a close, or
        input_timeout_seconds without a call (a call still running keeps it open)."""
        while not self._client_turn_over():
            steps = self._state.step
            self._details("waiting for the client's next tool call or its answer")
            try:
                await workflow.wait_condition(
                    functools.partial(self._client_acted, steps),
                    timeout=self._run.input_timeout_seconds,
                )
            except TimeoutError:
                if not self._client_lock.locked():
                    return StopReason.input_timeout
        self._accepting = False
        await self._client_calls_done()
        # Worked out once the call in flight is done: it may have been a stop tool.
        if self._client_stop is not None:
            return self._client_stop
        answer = self._client_answer.answer if self._client_answer else None
        if answer is None:
            return StopReason.closed
        self._state.step += 1
        await self._record_client_step(self._state.step, answer=answer)
        return StopReason.answered

    async def _client_calls_done(self) -> None:
        """Wait for the caller's tool call in flight, if any; its failure fails the run."""
        async with self._client_lock:
            if self._client_error is not None:
                raise self._client_error

    def _client_acted(self, steps: int) -> bool:
        return self._state.step != steps or self._client_turn_over()

    def _client_turn_over(self) -> bool:
        return (
            self._client_answer is not None
            or self._client_stop is not None
            or self._client_error is not None
            or self._state.close_requested
        )

    async def _record_client_step(
        self, step: int, call: ClientToolCall | None = None, answer: str | None = None
    ) -> None:
        recorded = ClientStepInput(run_id=self._run.run_id, step=step, call=call, answer=answer)
        summary = f"client tool call {call.name}" if call else "client answer"
        await execute(stubs.RECORD_CLIENT_STEP, recorded, policies.LOCAL_STEP, summary)

    def _looping(self, reply: ModelStepResult) -> bool:
        """Whether the model asked for the same calls as in its last steps, as many times
        in a row as the run allows (its calls are then not run again)."""
        if reply.calls_signature is None or reply.calls_signature != self._last_calls:
            self._last_calls = reply.calls_signature
            self._repeated_calls = 1
            return False
        self._repeated_calls += 1
        limit = self._run.max_repeated_tool_calls
        return limit > 0 and self._repeated_calls >= limit

    async def _tool_call(self, request: ToolCallInput, name: str) -> ToolCallResult:
        """An in-process tool as a local activity; a remote one as a regular activity that
        heartbeats, timed and retried as its environment says."""
        remote = self._run.remote
        if remote is None:
            return await execute(stubs.CALL_TOOL, request, policies.LOCAL_STEP, f"tool {name}")
        policy = policies.remote_tool(remote)
        return await execute(stubs.CALL_TOOL, request, policy, f"tool {name} (remote)")

    async def _results_of(self, step: int, calls: list[ToolCallRef]) -> bool:
        """Wait for the caller to run its tools; false if input_timeout_seconds passed."""
        run = self._run
        names = ", ".join(call.name for call in calls)
        self._state.pending_tool_calls = calls
        await self._change_status(
            RunStatus.awaiting_input, awaiting_key(step), pending_tool_calls=calls
        )
        self._details(f"step {step} · waiting for the caller to run {names}")
        try:
            await workflow.wait_condition(
                lambda: self._tool_results is not None, timeout=run.input_timeout_seconds
            )
        except TimeoutError:
            return False
        results = self._tool_results or []
        await execute(
            stubs.RECORD_TOOL_RESULTS,
            ToolResultsInput(run_id=run.run_id, step=step, calls=calls, results=results),
            policies.LOCAL_STEP,
            f"results of {names}",
        )
        self._tool_results = None
        self._state.pending_tool_calls = []
        self._answered_step = step
        self._mark(RunStatus.running)
        return True

    async def _wait_for_message(self) -> bool:
        """Idle until a user message is queued; false on close or idle timeout."""
        if self._queue:
            return True
        if self._state.close_requested:
            return False
        await self._change_status(RunStatus.idle, idle_key(self._state.turns))
        self._details("idle · waiting for the next user message")
        try:
            await workflow.wait_condition(
                lambda: bool(self._queue) or self._state.close_requested,
                timeout=self._run.idle_timeout_seconds,
            )
        except TimeoutError:
            return False
        return bool(self._queue)

    async def _deliver_messages(self) -> None:
        """Put queued user messages into the conversation before the next model step."""
        if not self._queue:
            return
        messages, self._queue = self._queue, []
        self._state.turns += 1
        await execute(
            stubs.RECORD_USER_MESSAGES,
            UserMessagesInput(run_id=self._run.run_id, turn=self._state.turns, messages=messages),
            policies.LOCAL_STEP,
            f"user message{'s' if len(messages) > 1 else ''} · turn {self._state.turns}",
        )
        self._mark(RunStatus.running)

    async def _change_status(
        self, status: RunStatus, key: str, pending_tool_calls: list[ToolCallRef] | None = None
    ) -> None:
        await execute(
            stubs.RECORD_STATUS,
            StatusChange(
                run_id=self._run.run_id,
                key=key,
                status=status,
                step=self._state.step,
                pending_tool_calls=pending_tool_calls,
            ),
            policies.LOCAL_STEP,
            status.value,
        )
        self._mark(status)

    def _mark(self, status: RunStatus) -> None:
        if self._state.status is not status:
            self._state.status = status
            workflow.upsert_search_attributes([STATUS.value_set(status.value)])

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() >= self._run.continue_as_new_after_events
            or info.is_continue_as_new_suggested()
        )

    async def _continue_as_new(self) -> NoReturn:
        self._details("continuing as new")

        def next_run(stream: WorkflowStreamState) -> list[RunInput]:
            carry = SessionCarry(
                step=self._state.step,
                turns=self._state.turns,
                deadline=self._deadline,
                recent_message_ids=self._recent_ids,
                queued_messages=self._queue,
                close_requested=self._state.close_requested,
                # Token deltas are live-only: the next run starts an empty log at the same
                # offset, so subscribers that follow the chain neither miss nor repeat.
                stream=WorkflowStreamState(
                    log=[],
                    base_offset=stream.base_offset + len(stream.log),
                    publishers=stream.publishers,
                ),
            )
            return [self._run.model_copy(update={"carry": carry})]

        await self._stream.continue_as_new(next_run)

    async def _model_step(self, step: int) -> AgentStepResult:
        """The model's reply. With an in-process environment the step is one activity, the
        model's call and its server-side tool calls, whose writes commit together (a paid
        reply first, on its own); with remote tools those are activities of their own."""
        run = self._run
        summary = f"step {step} · {run.model}"
        local = run.model_is_local
        if run.remote is None and workflow.patched(ONE_ACTIVITY_STEP_PATCH):
            request = AgentStepInput(
                run_id=run.run_id,
                step=step,
                model=run.model,
                stop_if_repeated=self._looping_signature(),
            )
            summary = f"{summary} and its tool calls"
            return await self._model_call(stubs.AGENT_STEP, request, summary, run.model, local)
        ref = StepRef(run_id=run.run_id, step=step, model=run.model)
        reply = await self._model_call(stubs.MODEL_STEP, ref, summary, run.model, local)
        return AgentStepResult(reply=reply, tools_ran=False)

    def _looping_signature(self) -> str | None:
        """The calls whose next repeat makes the run a loop (see _looping), if any."""
        limit = self._run.max_repeated_tool_calls
        if limit > 0 and self._repeated_calls + 1 >= limit:
            return self._last_calls
        return None

    async def _user_turn(self, step: int) -> UserTurnResult:
        run = self._run
        self._user_turns += 1
        self._details(f"step {step}/{run.max_steps} · waiting on the simulated user")
        ref = UserTurnRef(run_id=run.run_id, step=step, turn=self._user_turns)
        summary = f"user turn {self._user_turns} · {run.user_model}"
        return await self._model_call(
            stubs.USER_TURN, ref, summary, run.user_model, run.user_model_is_local
        )

    async def _finish(
        self, status: RunStatus, stop_reason: StopReason, error: str | None
    ) -> RunResult:
        run = self._run
        self._accepting = False
        self._details("tearing down")
        await execute(
            stubs.TEARDOWN,
            TeardownInput(
                run_id=run.run_id,
                status=status,
                stop_reason=stop_reason,
                steps=self._state.step,
                error=error,
            ),
            self._lifecycle(policies.TEARDOWN, policies.LOCAL_TEARDOWN),
            "teardown",
        )
        self._state.status = status
        self._state.stop_reason = stop_reason
        self._state.pending_tool_calls = []
        workflow.upsert_search_attributes([STATUS.value_set(status.value)])
        if self._state.reward is not None:
            workflow.upsert_search_attributes([REWARD.value_set(self._state.reward)])
        reward = "" if self._state.reward is None else f" · reward {self._state.reward:g}"
        self._details(f"{status.value} ({stop_reason.value}){reward}")
        self._count(f"loopline_runs_{status.value}", f"Runs that ended {status.value}")
        workflow.logger.info("run %s: %s (%s)", run.run_id, status.value, stop_reason.value)
        self._ended = True
        await self._deliver_callback()
        # Release live subscribers and let acknowledged updates return before the run closes.
        self._stream.detach_pollers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return RunResult(
            run_id=run.run_id,
            status=status,
            stop_reason=stop_reason,
            steps=self._state.step,
            reward=self._state.reward,
            error=error,
        )

    def _count(self, metric: str, description: str) -> None:
        """Add one to a run counter; the SDK leaves metrics out while a history replays."""
        attributes = {"environment": self._run.environment, "model": self._run.model}
        workflow.metric_meter().create_counter(metric, description).add(1, attributes)

    async def _deliver_callback(self) -> None:
        """POST the result to the caller's URL; its outcome is kept on the run, and a
        receiver that never answers does not change how the run ended."""
        retries = self._run.callback_retry_count
        if retries is None:
            return
        try:
            await execute(
                stubs.DELIVER_CALLBACK,
                RunRef(run_id=self._run.run_id),
                policies.callback(retries),
                "callback",
            )
        except ActivityError as error:
            workflow.logger.warning("callback not delivered: %s", describe(error))

    async def _model_call(
        self,
        stub: ActivityStub[InputT, OutputT],
        arg: InputT,
        summary: str,
        model: str | None,
        local: bool,
    ) -> OutputT:
        """The scripted model as a local activity; a provider's as a regular activity on the
        task queue of its calls (see RunInput.model_queue_prefix), where its rate limit holds."""
        if local and not self._answering_updates():
            return await execute(stub, arg, policies.LOCAL_STEP, summary)
        if local:
            # On the run's own queue, where every worker also takes model steps.
            return await execute(stub, arg, policies.MODEL_CALL, summary)
        prefix = self._run.model_queue_prefix
        queue = None if prefix is None or model is None else prefix + model.partition("/")[0]
        return await execute(stub, arg, policies.MODEL_CALL, summary, task_queue=queue)

    def _answering_updates(self) -> bool:
        """Whether the next local model step goes as a regular activity, to answer the
        updates (a message, tool results) that started this turn.

        An update is answered when the workflow task that took it completes, and local
        activities keep their task open: a scripted turn would hold the caller's POST until
        the turn ended. Scheduling a regular activity ends the task once the update's input
        is recorded; it costs a few ms on a server whose transfer queue is not rate limited
        (workers/cli/up.py, DEV_SERVER_TUNING). A timer would too, but under a stream of
        updates its firing waits, and the turn with it."""
        answering = self._unanswered_updates
        self._unanswered_updates = False
        return answering and workflow.patched(ANSWER_UPDATES_FIRST_PATCH)

    def _details(self, text: str) -> None:
        self._state.waiting_on = text
        workflow.set_current_details(text)

    def _why_not_accepting(self) -> str:
        if self._state.cancel_requested:
            return "it was cancelled"
        if self._state.close_requested:
            return "it is closing"
        return "its agent loop has ended"


def _mismatch(expected: list[str], given: list[str]) -> str | None:
    """What is wrong with the call ids of a continue, or None when they answer every call."""
    problems = []
    duplicated = sorted({call_id for call_id in given if given.count(call_id) > 1})
    unknown = sorted(set(given) - set(expected))
    missing = [call_id for call_id in expected if call_id not in given]
    if duplicated:
        problems.append(f"results given twice for {', '.join(duplicated)}")
    if unknown:
        problems.append(f"no pending call has id {', '.join(unknown)}")
    if missing:
        problems.append(f"missing results for {', '.join(missing)}")
    if not problems:
        return None
    return f"{'; '.join(problems)} (pending calls: {', '.join(expected)})"
