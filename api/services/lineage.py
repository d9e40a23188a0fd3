"""Replays and forks: new runs made from a recorded run, and what a replay changed.

A replay plays the parent's recorded model turns (the scripted model, with the recorded call
ids) against the environment and evaluation code deployed now: no model is called, so its
tool results, state and reward differ from the parent's only where the code does. A fork
plays the parent's first N turns the same way, rebuilding the conversation and the state at
step N by re-running those tool calls, then hands over to another model or script.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from api.services.access import Access, Caller, Need
from api.services.errors import Conflict, Invalid, NotFound
from api.services.recordings import (
    Recording,
    as_parent,
    read_recording,
    state_differences,
    tool_differences,
)
from api.services.runs import Lineage, RunService
from api.services.workflows import Workflows
from loopline.models import (
    SCRIPTED_MODEL,
    EvaluationConfig,
    Evaluator,
    EventFilter,
    EventType,
    EventView,
    ForkResult,
    ModelConfig,
    Provider,
    ReplayResult,
    RunRequest,
    RunSpec,
    RunStatus,
    RunView,
    Scope,
    Script,
    ScriptedStep,
    StopReason,
    parse_model,
)
from loopline.models.lineage import (
    ForkRequest,
    OriginKind,
    ReplayReport,
    ReplayRequest,
    RunOrigin,
    ValueChange,
)
from loopline.store import Stores

EVENT_PAGE = 1000
# Run ids have at most 64 characters: room for "-99" after a fork's run_id.
MAX_ROLLOUT_ID_BASE = 61
RUBRIC_AS_RECORDED = (
    "the rubric's verdict is the parent's, as recorded: its judge is a model, and a replay "
    "calls none"
)
RUBRIC_NOT_JUDGED = "the rubric was not judged: the parent recorded no verdict to replay"
# How a run ends that its replay ends the same way; the others (a deadline, a cancel, an
# error) came from outside the recorded turns.
REPLAYED_ENDS = frozenset(
    {
        StopReason.answered,
        StopReason.stop_tool,
        StopReason.max_steps,
        StopReason.user_done,
        StopReason.max_user_turns,
        StopReason.empty_reply,
        StopReason.repeated_tool_call,
    }
)
# The parent's config that shapes the conversation and where tools run, kept by a fork
# whose model does not set it.
INHERITED_MODEL_FIELDS = ("system_prompt", "tool_server_url")


@dataclass
class LineageService:
    stores: Stores
    access: Access
    runs: RunService
    workflows: Workflows

    # --- replay --------------------------------------------------------------------------------

    async def replay(
        self, caller: Caller, run_id: str, request: ReplayRequest
    ) -> tuple[ReplayResult, bool]:
        """Start a replay of an ended run; with `wait`, its report once it has ended.
        Returns whether the replay is new."""
        self.access.project(caller, Scope.task_write)
        parent, spec, recording = await self._recorded(caller, run_id)
        run_request = _replay_request(parent, spec, recording, request.run_id)
        origin = RunOrigin(kind=OriginKind.replay, run_id=run_id, step=recording.steps)
        view, new = await self._start(
            caller, run_request, spec, Lineage(origin=origin, recorded_steps=recording.steps)
        )
        if not request.wait:
            return ReplayResult(run=view), new
        await self.workflows.wait(view.run_id, request.timeout)
        view = await self.runs.get_run(caller, view.run_id)
        report = await self._report(caller, view)
        return ReplayResult(run=view, report=report if report.ended else None), new

    async def report(self, caller: Caller, run_id: str) -> ReplayReport:
        """What a replay (or a fork's replayed steps) did differently from its parent."""
        return await self._report(caller, await self.access.run(caller, run_id, Need.read))

    async def _report(self, caller: Caller, view: RunView) -> ReplayReport:
        run_id = view.run_id
        if view.origin is None:
            raise Conflict(f"run {run_id!r} is neither a replay nor a fork: it has no parent")
        origin = view.origin
        try:
            parent = await self.access.run(caller, origin.run_id, Need.read)
        except NotFound:
            raise NotFound(
                f"the parent of run {run_id!r}, run {origin.run_id!r}, no longer exists"
            ) from None
        recorded, replayed = await asyncio.gather(
            self._recording(origin.run_id), self._recording(run_id)
        )
        ended = view.status.is_final
        tools = tool_differences(recorded, replayed, origin.step, (run_id, origin.run_id))
        report = ReplayReport(
            run_id=run_id,
            origin=origin,
            status=view.status.value,
            ended=ended,
            same=True,
            compared_steps=origin.step,
            # A run still going has not made its later calls yet.
            tools=tools if ended else [tool for tool in tools if tool.field != "missing"],
        )
        if origin.kind is OriginKind.replay and ended:
            await self._compare_outcomes(report, parent, view)
        report.same = not (
            report.tools
            or report.state
            or report.reward
            or report.evaluations
            or report.answer
            or report.stop_reason
        )
        return report

    async def _compare_outcomes(
        self, report: ReplayReport, parent: RunView, replay: RunView
    ) -> None:
        if parent.status is not RunStatus.completed or parent.stop_reason not in REPLAYED_ENDS:
            why = parent.stop_reason.value if parent.stop_reason else parent.status.value
            report.notes.append(
                f"the parent ended by {why}, which a replay does not redo: only its recorded "
                "steps are compared"
            )
            return
        parent_state, replay_state = await asyncio.gather(
            self.stores.runs.load_state(parent.run_id), self.stores.runs.load_state(replay.run_id)
        )
        report.state = state_differences(
            parent_state, as_parent(replay_state, replay.run_id, parent.run_id)
        )
        report.reward = _changed(parent.reward, replay.reward)
        report.answer = _changed(parent.answer, replay.answer)
        report.stop_reason = _changed(parent.stop_reason, replay.stop_reason)
        before = {item.evaluator.value: item.score for item in parent.evaluations or []}
        after = {item.evaluator.value: item.score for item in replay.evaluations or []}
        for name in sorted(before.keys() | after.keys()):
            change = _changed(before.get(name), after.get(name))
            if change is not None:
                report.evaluations[name] = change
        report.notes.extend(_rubric_notes(parent, await self.stores.runs.run_spec(parent.run_id)))

    # --- fork ----------------------------------------------------------------------------------

    async def fork(
        self, caller: Caller, run_id: str, request: ForkRequest
    ) -> tuple[ForkResult, bool]:
        """Start `rollouts` runs from step `request.step` of an ended run. Returns whether
        they are new."""
        self.access.project(caller, Scope.task_write)
        parent, spec, recording = await self._recorded(caller, run_id)
        _check_fork(parent, spec, recording, request)
        run_request = _fork_request(spec, recording, request)
        origin = RunOrigin(kind=OriginKind.fork, run_id=run_id, step=request.step)
        job_id = _forks_job_id(run_id, request) if request.rollouts > 1 else None
        rollout_ids = [_rollout_id(request, rollout) for rollout in range(request.rollouts)]
        views: list[RunView] = []
        new = False
        for rollout, rollout_id in enumerate(rollout_ids):
            lineage = Lineage(
                origin=origin,
                recorded_steps=request.step,
                job_id=job_id,
                rollout=rollout if request.rollouts > 1 else None,
            )
            view, started = await self._start(
                caller, run_request.model_copy(update={"run_id": rollout_id}), spec, lineage
            )
            views.append(view)
            new = new or started
        return ForkResult(runs=views, batch_id=job_id), new

    # --- shared --------------------------------------------------------------------------------

    async def _start(
        self, caller: Caller, request: RunRequest, parent: RunSpec, lineage: Lineage
    ) -> tuple[RunView, bool]:
        """Start the run as the parent's task, outside any job but its own lineage's."""
        try:
            return await self.runs.start_run(
                caller, request, task=parent.task, job=False, lineage=lineage
            )
        except Invalid as error:
            if error.loc != ["body", "taskset"]:
                raise
            raise Conflict(
                f"the taskset of run {lineage.origin.run_id!r} ({parent.taskset_id}) no "
                "longer exists, and its evaluation may depend on its task: upload the taskset "
                "again to replay or fork the run"
            ) from error

    async def _recorded(self, caller: Caller, run_id: str) -> tuple[RunView, RunSpec, Recording]:
        parent = await self.access.run(caller, run_id, Need.read)
        if not parent.status.is_final:
            raise Conflict(
                f"run {run_id!r} is {parent.status.value}: replay or fork it once it has ended"
            )
        spec = await self.stores.runs.run_spec(run_id)
        recording = await self._recording(run_id)
        _check_replayable(run_id, spec, recording)
        return parent, spec, recording

    async def _recording(self, run_id: str) -> Recording:
        events: list[EventView] = []
        after = 0
        types = (EventType.message, EventType.log)
        while True:
            page = await self.stores.runs.events(
                run_id, EventFilter(after=after, limit=EVENT_PAGE, types=types)
            )
            events.extend(page)
            if len(page) < EVENT_PAGE:
                return read_recording(events)
            after = page[-1].seq


def _check_replayable(run_id: str, spec: RunSpec, recording: Recording) -> None:
    """What a replay cannot redo without the caller: a session's messages, the results of
    client-side tools."""
    if spec.session:
        raise Conflict(
            f"run {run_id!r} is a session: its user messages came from its caller, so it "
            "cannot be replayed or forked"
        )
    client = {tool.name for tool in spec.client_tools} & recording.called_tools()
    if client:
        raise Conflict(
            f"run {run_id!r} called client-side tools ({', '.join(sorted(client))}), whose "
            "results came from its caller: it cannot be replayed or forked"
        )
    if not recording.steps:
        raise Conflict(
            f"run {run_id!r} recorded no model step (it kept no messages, or ended before "
            "its first): there is nothing to replay"
        )


def _check_fork(parent: RunView, spec: RunSpec, recording: Recording, fork: ForkRequest) -> None:
    if spec.user_llm is not None:
        raise Conflict(
            f"run {parent.run_id!r} has a simulated user, whose later turns answered the "
            "parent's conversation, not the fork's: it can be replayed, not forked"
        )
    # A fork at the parent's answer, or at its stop tool's call, would end where it starts.
    end = _last_step_ends(parent, recording)
    last = recording.steps - 1 if end else recording.steps
    if fork.step > last:
        raise Invalid(
            ["body", "step"],
            f"run {parent.run_id!r} has {recording.steps} model steps"
            + (f", the last of them {end}" if end else "")
            + f": fork it at a step from 0 to {last}",
        )
    max_steps = fork.max_steps or spec.max_steps
    if max_steps <= fork.step:
        raise Invalid(
            ["body", "max_steps"],
            f"max_steps {max_steps} leaves no step after the fork point {fork.step}: "
            f"give max_steps of at least {fork.step + 1}",
        )
    if fork.script is not None and _provider_of(_continuation_model(spec, fork)) not in (
        Provider.scripted,
        None,
    ):
        raise Invalid(
            ["body", "script"],
            "script is what model 'scripted' says after the fork point, and the fork's model "
            "is another: drop script, or set model to 'scripted'",
        )


def _last_step_ends(parent: RunView, recording: Recording) -> str | None:
    """What the parent's last step did that would end a fork made there."""
    if recording.answered_at() is not None:
        return "its answer"
    if parent.stop_reason is StopReason.stop_tool:
        return "its call of a stop tool"
    return None


def _forks_job_id(parent: str, request: ForkRequest) -> str:
    """The job the rollouts of one fork request share; the same request finds it again."""
    named = f"{parent}:{request.step}:{request.run_id or uuid.uuid4().hex}"
    return f"forks-{hashlib.sha256(named.encode()).hexdigest()[:40]}"


def _rollout_id(request: ForkRequest, rollout: int) -> str | None:
    if request.run_id is None:
        return None
    if request.rollouts == 1:
        return request.run_id
    if len(request.run_id) > MAX_ROLLOUT_ID_BASE:
        raise Invalid(
            ["body", "run_id"],
            f"with rollouts, run_id names the forks run_id-0, run_id-1, ...: give it at most "
            f"{MAX_ROLLOUT_ID_BASE} characters",
        )
    return f"{request.run_id}-{rollout}"


def _base_request(
    spec: RunSpec,
    model: str | ModelConfig,
    script: Script | None,
    evaluation: EvaluationConfig,
) -> RunRequest:
    """A run request with the parent's environment, scenario, args, tools and limits."""
    return RunRequest(
        environment=spec.environment,
        scenario=spec.scenario,
        args=spec.args,
        model=model,
        script=script,
        prompt=spec.prompt,
        include_tools=spec.include_tools,
        exclude_tools=spec.exclude_tools,
        max_steps=spec.max_steps,
        taskset=spec.taskset_id,
        metadata=spec.metadata,
        evaluation=evaluation,
    )


def _replay_request(
    parent: RunView, spec: RunSpec, recording: Recording, run_id: str | None
) -> RunRequest:
    evaluation = _replayed_evaluation(parent, spec)
    request = _base_request(spec, _scripted_like(spec.llm), recording.script(), evaluation)
    if recording.answered_at() is None and spec.user_llm is None:
        # No answer to end on: the replay ends where the recording does, not on a turn the
        # script does not have.
        request = request.model_copy(update={"max_steps": recording.steps})
    return _with_simulated_user(request, spec, recording).model_copy(update={"run_id": run_id})


def _fork_request(spec: RunSpec, recording: Recording, fork: ForkRequest) -> RunRequest:
    model = _continuation_model(spec, fork)
    prefix = recording.turns[: fork.step]
    if _provider_of(model) is Provider.client:
        raise Invalid(
            ["body", "model"],
            "the steps after the fork point need a model that runs here: the parent's agent "
            "ran in its caller (model 'client'); name one, e.g. 'openai/gpt-4o' or 'scripted'",
        )
    if _provider_of(model) is Provider.scripted:
        continuation = fork.script if fork.script is not None else _rest_of(spec, fork.step)
        if continuation is not None and continuation.repeat:
            raise Invalid(
                ["body", "script"],
                "a fork's script plays after the parent's steps and cannot repeat: "
                "write out its steps (repeat: false)",
            )
        steps = [*prefix, *(continuation.steps if continuation else [])]
    else:
        steps = prefix
    script = Script(steps=steps) if steps else None
    request = _base_request(spec, model, script, _parent_evaluation(spec))
    return request.model_copy(
        update={
            "provider_api_keys": fork.provider_api_keys,
            "prompt": fork.prompt if fork.prompt is not None else spec.prompt,
            "max_steps": fork.max_steps or spec.max_steps,
            "tags": fork.tags,
        }
    )


def _continuation_model(spec: RunSpec, fork: ForkRequest) -> str | ModelConfig:
    """The fork's model, keeping the parent's system prompt and tool server unless it
    sets its own; unset, the parent's model."""
    if fork.model is None:
        return spec.llm
    try:
        config = parse_model(fork.model)
    except ValueError:
        return fork.model  # the run request says what is wrong with it
    inherited = {
        name: getattr(spec.llm, name)
        for name in INHERITED_MODEL_FIELDS
        if name not in config.model_fields_set
    }
    return config.model_copy(update=inherited)


def _provider_of(model: str | ModelConfig) -> Provider | None:
    """The provider a model names; None for a name the run request will refuse itself."""
    if isinstance(model, ModelConfig):
        return model.provider
    try:
        return parse_model(model).provider
    except ValueError:
        return None


def _rest_of(spec: RunSpec, step: int) -> Script | None:
    """What the parent's own script says after `step`, written out to the step limit."""
    if spec.script is None:
        return None
    steps = spec.script.steps
    if spec.script.repeat:
        rest = [steps[turn % len(steps)] for turn in range(step, spec.max_steps)]
    else:
        rest = steps[step:]
    return Script(steps=rest) if rest else None


def _with_simulated_user(request: RunRequest, spec: RunSpec, recording: Recording) -> RunRequest:
    """A simulated user says again what it said, from the recording, ending as it did."""
    if spec.user_llm is None or not recording.user_turns:
        return request
    return request.model_copy(
        update={
            "user_model": SCRIPTED_MODEL,
            "user_script": Script(steps=recording.user_turns),
            "max_user_turns": spec.max_user_turns,
        }
    )


def _scripted_like(llm: ModelConfig) -> ModelConfig:
    """The scripted model, with what of the parent's config shapes the run, not the call."""
    return ModelConfig(
        model=SCRIPTED_MODEL,
        provider=Provider.scripted,
        **{name: getattr(llm, name) for name in INHERITED_MODEL_FIELDS},
    )


def _parent_evaluation(spec: RunSpec) -> EvaluationConfig:
    evaluation = spec.evaluation
    return EvaluationConfig(
        validation=evaluation.validation,
        rubric=evaluation.rubric,
        judge_model=evaluation.judge,
        judge_script=evaluation.judge_script,
        weights=evaluation.weights,
    )


def _replayed_evaluation(parent: RunView, spec: RunSpec) -> EvaluationConfig:
    """The parent's evaluators. A rubric judged by a model gets the parent's recorded
    verdict, from a scripted judge, so a replay calls no model and the rubric's score is
    the parent's; without a recorded verdict, no rubric."""
    evaluation = _parent_evaluation(spec)
    if not _rubric_judged_by_a_model(spec):
        return evaluation
    verdict = next(
        (item for item in parent.evaluations or [] if item.evaluator is Evaluator.rubric), None
    )
    if verdict is None:
        return evaluation.model_copy(update={"rubric": None, "judge_model": None})
    answer = {"score": verdict.score, "passed": verdict.success, "reasoning": verdict.reasoning}
    return evaluation.model_copy(
        update={
            "judge_model": SCRIPTED_MODEL,
            "judge_script": Script(steps=[ScriptedStep(content=json.dumps(answer))]),
        }
    )


def _rubric_judged_by_a_model(spec: RunSpec) -> bool:
    judge = spec.evaluation.judge
    return spec.evaluation.rubric is not None and (
        judge is None or judge.provider is not Provider.scripted
    )


def _rubric_notes(parent: RunView, spec: RunSpec) -> list[str]:
    if not _rubric_judged_by_a_model(spec):
        return []
    recorded = any(item.evaluator is Evaluator.rubric for item in parent.evaluations or [])
    return [RUBRIC_AS_RECORDED if recorded else RUBRIC_NOT_JUDGED]


def _changed(before: Any, after: Any) -> ValueChange | None:
    return None if before == after else ValueChange(recorded=before, replayed=after)
