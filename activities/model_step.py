"""One model step: read the context from the store, ask the model, record its reply."""

from __future__ import annotations

import hashlib
import json

from temporalio import activity

from activities.context import Summary, compose, cut_point, summary_due, summary_request
from activities.model_calls import ModelCallingActivities, Priced
from activities.providers import Ask, Purpose
from loopline.models import EventType, Message, RunSpec, ToolCall, ToolInfo
from loopline.store.rows import NewEvent
from workflows.contract import stubs
from workflows.contract.names import model_key, summary_key
from workflows.contract.payloads import ModelStepResult, StepRef, ToolCallRef

MODEL_SECRET = "model"


class ModelActivities(ModelCallingActivities):
    @activity.defn(name=stubs.MODEL_STEP.name)
    async def model_step(self, ref: StepRef) -> ModelStepResult:
        recorded = await self.store.event_by_key(ref.run_id, model_key(ref.step))
        if recorded is None:
            recorded, _ = (await self.store.record_all(ref.run_id, [await self.reply(ref)]))[0]
        # A retry after the reply was committed: never pay for (or diverge on) it twice.
        return step_result(Message.model_validate(recorded.data))

    async def reply(self, ref: StepRef) -> NewEvent:
        """Ask the model for the step's reply: the event that records it, not yet written."""
        spec = await self.spec(ref.run_id)
        # Recorded steps are played as they were: no model is asked to summarise them.
        if ref.step > spec.recorded_steps and summary_due(spec.llm, ref.step):
            await self._summarise(ref, spec)
        tools = [*await self._offered_tools(ref.run_id, spec), *spec.client_tools]

        async def context() -> list[Message]:
            messages = await self.store.conversation(ref.run_id)
            if not spec.llm.summarize_every_n_turns:
                return messages
            return compose(messages, await self._latest_summary(ref.run_id))

        priced = await self.caller.call(
            ref.run_id,
            spec.agent_model(ref.step),
            MODEL_SECRET,
            spec.script,
            Ask(context, tools, ref.step, Purpose.agent),
            stream_step=ref.step,
        )
        message = priced.completion.message
        final_answer = {} if message.tool_calls else {"answer": message.content}
        return NewEvent(
            model_key(ref.step),
            EventType.message,
            {**message.model_dump(), **_call_facts(priced)},
            usage=priced.completion.usage,
            run_fields={"steps": ref.step, **final_answer},
        )

    async def _offered_tools(self, run_id: str, spec: RunSpec) -> list[ToolInfo]:
        if spec.remote is not None:
            return await self.remote_tools(run_id)
        environment = self.environment(spec)
        return [tool.info() for name, tool in environment.tools.items() if spec.offers(name)]

    async def _summarise(self, ref: StepRef, spec: RunSpec) -> None:
        if await self.store.event_by_key(ref.run_id, summary_key(ref.step)) is not None:
            return
        messages = await self.store.conversation(ref.run_id)
        previous = await self._latest_summary(ref.run_id)
        cut = cut_point(messages, spec.llm.context_stride)
        if cut <= (previous.covers if previous else 0):
            return
        request = summary_request(messages, previous, cut)

        async def transcript() -> list[Message]:
            return request

        priced = await self.caller.call(
            ref.run_id,
            spec.llm,
            MODEL_SECRET,
            spec.script,
            Ask(transcript, [], ref.step, Purpose.summary),
        )
        summary = Summary(content=priced.completion.message.content, covers=cut)
        await self.store.record(
            ref.run_id,
            summary_key(ref.step),
            EventType.summary,
            {**summary.model_dump(), **_call_facts(priced)},
            usage=priced.completion.usage,
        )

    async def _latest_summary(self, run_id: str) -> Summary | None:
        event = await self.store.last_event(run_id, EventType.summary)
        return Summary.model_validate(event.data) if event else None


def step_result(message: Message) -> ModelStepResult:
    """What the workflow learns of a reply: its calls, whether it is empty, their digest."""
    return ModelStepResult(
        tool_calls=[ToolCallRef(id=call.id, name=call.name) for call in message.tool_calls],
        empty=not message.tool_calls and not message.content.strip(),
        calls_signature=_signature(message.tool_calls) if message.tool_calls else None,
    )


def _signature(calls: list[ToolCall]) -> str:
    """The same for calls of the same tools with the same arguments, whatever their ids."""
    named = sorted(
        json.dumps([call.name, call.arguments, call.invalid_arguments], sort_keys=True)
        for call in calls
    )
    return hashlib.sha256("\n".join(named).encode()).hexdigest()[:32]


def _call_facts(priced: Priced) -> dict[str, object]:
    completion = priced.completion
    facts: dict[str, object] = {
        "usage": completion.usage.model_dump(),
        "finish_reason": completion.finish_reason,
        "provider_latency_ms": round(priced.latency_ms, 1),
    }
    if completion.logprobs is not None:
        facts["logprobs"] = [item.model_dump() for item in completion.logprobs]
    if completion.note is not None:
        facts["note"] = completion.note
    return facts
