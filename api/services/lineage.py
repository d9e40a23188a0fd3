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
import uuid
from dataclasses import dataclass
from typing import Any

from api.services.access import Access, Caller, Need
from api.services.errors import Conflict, Invalid
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
    EventFilter,
    EventType,
    EventView,
    ForkResult,
    ModelConfig,
    Provider,
    ReplayResult,
    RunRequest,
    RunSpec,
    RunView,
    Scope,
    Script,
    ScriptedStep,
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

MESSAGE_PAGE = 1000
# Run ids have at most 64 characters: room for "-99" after a fork's run_id.
MAX_ROLLOUT_ID_BASE = 61
RUBRIC_NOT_JUDGED = "the rubric was not judged again: its judge is a model, and a replay calls none"


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
        _, spec, recording = await self._recorded(caller, run_id)
        run_request = _replay_request(spec, recording, request.run_id)
        origin = RunOrigin(kind=OriginKind.replay, run_id=run_id, step=recording.steps)
        view, new = await self.runs.start_run(
            caller,
            run_request,
            task=spec.task,
            job=False,
            lineage=Lineage(origin=origin, recorded_steps=recording.steps),
        )
        if not request.wait:
            return ReplayResult(run=view), new
        await self.workflows.wait(view.run_id, request.timeout)
        report = await self.report(caller, view.run_id)
        view = await self.runs.get_run(caller, view.run_id)
        return ReplayResult(run=view, report=report if report.ended else None), new

    async def report(self, caller: Caller, run_id: str) -> ReplayReport:
        """What a replay (or a fork's replayed steps) did differently from its parent."""
        view = await self.access.run(caller, run_id, Need.read)
        if view.origin is None:
            raise Conflict(f"run {run_id!r} is neither a replay nor a fork: it has no parent")
        origin = view.origin
        parent = await self.access.run(caller, origin.run_id, Need.read)
        recorded, replayed = await asyncio.gather(
            self._recording(origin.run_id), self._recording(run_id)
        )
        report = ReplayReport(
            run_id=run_id,
            origin=origin,
            status=view.status.value,
            ended=view.status.is_final,
            same=True,
            compared_steps=origin.step,
            tools=tool_differences(recorded, replayed, origin.step, (run_id, origin.run_id)),
        )
        if origin.kind is OriginKind.replay and view.status.is_final:
            await self._compare_outcomes(report, parent, view)
        report.same = not (
            report.tools
            or report.state
            or report.reward
            or report.evaluations
            or report.answer
            or report.stop_reason
        )
        spec = await self.stores.runs.run_spec(run_id)
        parent_spec = await self.stores.runs.run_spec(origin.run_id)
        if parent_spec.evaluation.rubric is not None and spec.evaluation.rubric is None:
            report.notes.append(RUBRIC_NOT_JUDGED)
        return report

    async def _compare_outcomes(
        self, report: ReplayReport, parent: RunView, replay: RunView
    ) -> None:
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

    # --- fork ----------------------------------------------------------------------------------

    async def fork(
        self, caller: Caller, run_id: str, request: ForkRequest
    ) -> tuple[ForkResult, bool]:
        """Start `rollouts` runs from step `request.step` of an ended run. Returns whether
        they are new."""
        self.access.project(caller, Scope.task_write)
        _, spec, recording = await self._recorded(caller, run_id)
        _check_fork_step(run_id, request.step, recording)
        run_request = _fork_request(spec, recording, request)
        origin = RunOrigin(kind=OriginKind.fork, run_id=run_id, step=request.step)
        job_id = _forks_job_id(run_id, request) if request.rollouts > 1 else None
        views: list[RunView] = []
        new = False
        for rollout in range(request.rollouts):
            lineage = Lineage(
                origin=origin,
                recorded_steps=request.step,
                job_id=job_id,
                rollout=rollout if request.rollouts > 1 else None,
            )
            rollout_request = run_request.model_copy(
                update={"run_id": _rollout_id(request, rollout)}
            )
            view, started = await self.runs.start_run(
                caller, rollout_request, task=spec.task, job=False, lineage=lineage
            )
            views.append(view)
            new = new or started
        return ForkResult(runs=views, batch_id=job_id), new

    # --- reading the parent --------------------------------------------------------------------

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
        while True:
            page = await self.stores.runs.events(
                run_id, EventFilter(after=after, limit=MESSAGE_PAGE, types=(EventType.message,))
            )
            events.extend(page)
            if len(page) < MESSAGE_PAGE:
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


def _check_fork_step(run_id: str, step: int, recording: Recording) -> None:
    last = recording.steps - 1 if recording.answered_at() else recording.steps
    if step > last:
        raise Invalid(
            ["body", "step"],
            f"run {run_id!r} has {recording.steps} model steps"
            + (", the last of them its answer" if recording.answered_at() else "")
            + f": fork it at a step from 0 to {last}",
        )


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


def _base_request(spec: RunSpec, model: str | ModelConfig, script: Script | None) -> RunRequest:
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
        evaluation=_replayed_evaluation(spec),
    )


def _replay_request(spec: RunSpec, recording: Recording, run_id: str | None) -> RunRequest:
    request = _base_request(spec, _scripted_like(spec.llm), recording.script())
    return _with_simulated_user(request, spec, recording).model_copy(update={"run_id": run_id})


def _fork_request(spec: RunSpec, recording: Recording, fork: ForkRequest) -> RunRequest:
    model = fork.model if fork.model is not None else spec.llm
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
    request = _base_request(spec, model, Script(steps=steps) if steps else None)
    request = _with_simulated_user(request, spec, recording)
    return request.model_copy(
        update={
            "provider_api_keys": fork.provider_api_keys,
            "prompt": fork.prompt if fork.prompt is not None else spec.prompt,
            "max_steps": fork.max_steps or spec.max_steps,
            "tags": fork.tags,
        }
    )


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
    """A simulated user says again what it said, from the recording."""
    if spec.user_llm is None:
        return request
    said = [ScriptedStep(content=text) for text in recording.user_messages[1:]]
    if not said:
        return request
    return request.model_copy(
        update={
            "user_model": SCRIPTED_MODEL,
            "user_script": Script(steps=said),
            "max_user_turns": spec.max_user_turns,
        }
    )


def _scripted_like(llm: ModelConfig) -> ModelConfig:
    """The scripted model, with what of the parent's config shapes the run, not the call."""
    return ModelConfig(
        model=SCRIPTED_MODEL,
        provider=Provider.scripted,
        system_prompt=llm.system_prompt,
        tool_server_url=llm.tool_server_url,
    )


def _replayed_evaluation(spec: RunSpec) -> EvaluationConfig:
    """The parent's evaluators; a rubric only when its judge is scripted (no model call)."""
    evaluation = spec.evaluation
    judge = evaluation.judge
    judged_again = judge is not None and judge.provider is Provider.scripted
    return EvaluationConfig(
        validation=evaluation.validation,
        rubric=evaluation.rubric if judged_again else None,
        judge_model=judge if judged_again else None,
        judge_script=evaluation.judge_script if judged_again else None,
        weights=evaluation.weights,
    )


def _changed(before: Any, after: Any) -> ValueChange | None:
    return None if before == after else ValueChange(recorded=before, replayed=after)
