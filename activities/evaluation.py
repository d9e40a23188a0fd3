"""Evaluation of a finished run: the scenario's own reward, a check of the tool calls that
show success, and a judge model's verdict on a rubric, combined into one reward.

Each evaluator's result is recorded as an `evaluation` event and kept on the run; the
reward is the weighted mean of their scores and the run succeeded if every one says so.
"""

from __future__ import annotations

import json
import re
from typing import Any

from temporalio import activity

from activities.errors import permanent, remote_failure
from activities.heartbeats import heartbeating
from activities.model_calls import ModelCallingActivities
from activities.providers import Ask, Purpose
from loopline.environment import Outcome, Reward
from loopline.environment.remote import RemoteEnvironment, RemoteScenarioError
from loopline.environment.toolservers import ToolServerError
from loopline.models import (
    EvaluationSpec,
    Evaluator,
    EvaluatorResult,
    EventType,
    ExpectedToolCall,
    Message,
    RunSpec,
)
from loopline.store.rows import NewEvent
from workflows.contract import stubs
from workflows.contract.names import EVALUATE_KEY, evaluator_key
from workflows.contract.payloads import EvaluateInput, EvaluateResult, RunRef

JUDGE_SECRET = "judge"
JUDGE_INSTRUCTIONS = """You grade the work of an AI agent against a rubric.
Read the rubric and the agent's transcript, then reply with one JSON object and nothing else:
{"score": <a number from 0 to 1>, "passed": <true or false>, "reasoning": "<why, briefly>"}"""
# A transcript longer than this is cut in the middle: a judge needs the task and the ending.
TRANSCRIPT_CHARS = 60_000


class EvaluationActivities(ModelCallingActivities):
    @activity.defn(name=stubs.JUDGE.name)
    async def judge(self, ref: RunRef) -> None:
        """Ask the judge model to score the trajectory against the run's rubric."""
        key = evaluator_key(Evaluator.rubric)
        if await self.store.event_by_key(ref.run_id, key) is not None:
            return
        spec = await self.spec(ref.run_id)
        evaluation = spec.evaluation
        if evaluation.rubric is None or evaluation.judge is None:
            raise permanent(f"run {ref.run_id} has no rubric to judge", "NoRubric")
        transcript = transcript_text(await self.store.conversation(ref.run_id))
        request = [
            Message(role="system", content=JUDGE_INSTRUCTIONS),
            Message(
                role="user",
                content=f"# Rubric\n\n{evaluation.rubric}\n\n# Transcript\n\n{transcript}",
            ),
        ]

        async def conversation() -> list[Message]:
            return request

        priced = await self.caller.call(
            ref.run_id,
            evaluation.judge,
            JUDGE_SECRET,
            evaluation.judge_script,
            Ask(conversation, [], 1, Purpose.judge),
        )
        result = read_verdict(
            priced.completion.message.content, _weight(evaluation, Evaluator.rubric)
        )
        data = {**result.model_dump(mode="json"), "usage": priced.completion.usage.model_dump()}
        await self.store.record(
            ref.run_id, key, EventType.evaluation, data, usage=priced.completion.usage
        )

    @activity.defn(name=stubs.EVALUATE.name)
    async def evaluate(self, request: EvaluateInput) -> EvaluateResult:
        """Run the scenario's evaluation and the validation check, and combine them with
        the judge's verdict (recorded before, if the run has a rubric) into the reward."""
        async with heartbeating():
            return await self._evaluate(request)

    async def _evaluate(self, request: EvaluateInput) -> EvaluateResult:
        done = await self.store.event_by_key(request.run_id, EVALUATE_KEY)
        if done is not None:
            return EvaluateResult(reward=done.data["reward"], success=done.data["success"])
        spec = await self.spec(request.run_id)
        trajectory = await self.store.conversation(request.run_id)
        results = [await self._scenario_result(request, spec, trajectory)]
        if spec.evaluation.validation:
            weight = _weight(spec.evaluation, Evaluator.validation)
            results.append(check_tool_calls(spec.evaluation.validation, trajectory, weight))
        if spec.evaluation.rubric is not None:
            verdict = await self.store.event_by_key(request.run_id, evaluator_key(Evaluator.rubric))
            if verdict is None:
                raise permanent("the rubric was not judged before evaluation", "NotJudged")
            results.append(EvaluatorResult.model_validate(verdict.data))
        reward, success = combine(results)
        details = results[0].details
        # Each evaluator's event and the reward in one commit (the judge's verdict is in
        # already): batches' runs take turns at the store's writer.
        entries = [
            NewEvent(
                evaluator_key(result.evaluator),
                EventType.evaluation,
                result.model_dump(mode="json"),
            )
            for result in results
            if result.evaluator is not Evaluator.rubric
        ]
        entries.append(
            NewEvent(
                EVALUATE_KEY,
                EventType.reward,
                {"reward": reward, "success": success, "details": details},
                run_fields={
                    "reward": reward,
                    "reward_details": details,
                    "success": success,
                    "evaluations": [result.model_dump(mode="json") for result in results],
                },
            )
        )
        await self.store.record_all(request.run_id, entries)
        return EvaluateResult(reward=reward, success=success)

    async def _scenario_result(
        self, request: EvaluateInput, spec: RunSpec, trajectory: list[Message]
    ) -> EvaluatorResult:
        run = await self.store.get_run(request.run_id)
        remote = self.remote(spec)
        if remote is not None:
            reward = await self._remote_reward(request, spec, remote, run.answer)
        else:
            reward = await self._local_reward(request, spec, trajectory, run.answer)
        return EvaluatorResult(
            evaluator=Evaluator.scenario,
            score=reward.value,
            success=reward.succeeded,
            weight=_weight(spec.evaluation, Evaluator.scenario),
            details=reward.details,
        )

    async def _local_reward(
        self,
        request: EvaluateInput,
        spec: RunSpec,
        trajectory: list[Message],
        answer: str | None,
    ) -> Reward:
        environment = self.environment(spec)
        outcome = Outcome(
            args=spec.args,
            state=environment.load_state(await self.store.load_state(request.run_id)),
            answer=answer,
            trajectory=trajectory,
            stop_reason=request.stop_reason,
            run_id=request.run_id,
            task=spec.task,
            taskset_id=spec.taskset_id,
        )
        try:
            return await self.scenario(spec).run_evaluation(outcome)
        except Exception as error:
            raise permanent(
                f"evaluation of scenario {spec.scenario!r} failed: {type(error).__name__}: {error}",
                "ScenarioEvaluationFailed",
            ) from error

    async def _remote_reward(
        self, request: EvaluateInput, spec: RunSpec, remote: RemoteEnvironment, answer: str | None
    ) -> Reward:
        """The server's `evaluate` tool judges its own state, found by the run's session."""
        meta = await self.lifecycle_meta(request.run_id, EVALUATE_KEY)
        evaluation = {
            "arguments": spec.args,
            "answer": answer,
            "stop_reason": request.stop_reason.value,
        }
        try:
            return await remote.evaluate(spec.scenario, evaluation, meta)
        except (ToolServerError, RemoteScenarioError) as error:
            raise remote_failure(f"evaluation of scenario {spec.scenario!r}", error) from error


def combine(results: list[EvaluatorResult]) -> tuple[float, bool]:
    """The weighted mean of the scores, and whether every evaluator counted a success."""
    total_weight = sum(result.weight for result in results)
    if total_weight <= 0:
        reward = sum(result.score for result in results) / len(results)
    else:
        reward = sum(result.score * result.weight for result in results) / total_weight
    return reward, all(result.success for result in results)


def check_tool_calls(
    expected: list[ExpectedToolCall], trajectory: list[Message], weight: float
) -> EvaluatorResult:
    """Which expected calls the agent made (same name, the given arguments equal)."""
    made = [call for message in trajectory for call in message.tool_calls]
    matched: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for call in expected:
        found = any(
            actual.name == call.name and _contains(actual.arguments, call.arguments)
            for actual in made
        )
        (matched if found else missing).append(call.model_dump())
    return EvaluatorResult(
        evaluator=Evaluator.validation,
        score=len(matched) / len(expected),
        success=not missing,
        weight=weight,
        details={"matched": matched, "missing": missing},
    )


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _contains(actual[key], value) for key, value in expected.items()
        )
    return bool(actual == expected)


def read_verdict(reply: str, weight: float) -> EvaluatorResult:
    """The judge's JSON verdict; a reply that is not one scores 0 and says why."""
    verdict = _json_object(reply) or {}
    score = verdict.get("score")
    if not isinstance(score, int | float) or isinstance(score, bool):
        return EvaluatorResult(
            evaluator=Evaluator.rubric,
            score=0.0,
            success=False,
            weight=weight,
            details={"error": "the judge did not answer with a JSON verdict", "reply": reply},
        )
    return EvaluatorResult(
        evaluator=Evaluator.rubric,
        score=min(1.0, max(0.0, float(score))),
        success=bool(verdict.get("passed", score >= 1.0)),
        weight=weight,
        reasoning=str(verdict.get("reasoning", "")),
    )


def _json_object(text: str) -> dict[str, Any] | None:
    match = re.search(r"\{.*\}", text, flags=re.S)
    if match is None:
        return None
    try:
        value = json.loads(match.group(0))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def transcript_text(conversation: list[Message]) -> str:
    lines = []
    for message in conversation:
        if message.role == "system":
            continue
        for call in message.tool_calls:
            lines.append(f"[assistant called {call.name} {json.dumps(call.arguments)}]")
        if message.content:
            speaker = f"tool {message.name}" if message.role == "tool" else message.role
            lines.append(f"[{speaker}] {message.content}")
    text = "\n".join(lines)
    if len(text) <= TRANSCRIPT_CHARS:
        return text
    half = TRANSCRIPT_CHARS // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters left out ...]\n{text[-half:]}"


def _weight(evaluation: EvaluationSpec, evaluator: Evaluator) -> float:
    return evaluation.weights.get(evaluator, 1.0)
