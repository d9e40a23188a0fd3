"""One model step: read the conversation from the store, ask the model, record its reply."""

from __future__ import annotations

import functools

from temporalio import activity

from activities.base import StoreActivities
from activities.errors import permanent
from activities.providers import UnknownModelError, provider_for
from loopline.models import EventType, Message, ModelStepResult, StepRef, ToolCallRef


def model_key(step: int) -> str:
    return f"step-{step}:model"


class ModelActivities(StoreActivities):
    @activity.defn(name="model_step")
    async def model_step(self, ref: StepRef) -> ModelStepResult:
        recorded = await self.store.event_by_key(ref.run_id, model_key(ref.step))
        if recorded is None:
            message = await self._ask_model(ref)
        else:
            # A retry after the reply was committed: never pay for (or diverge on) it twice.
            message = Message.model_validate(recorded.data)
        return ModelStepResult(
            tool_calls=[ToolCallRef(id=call.id, name=call.name) for call in message.tool_calls]
        )

    async def _ask_model(self, ref: StepRef) -> Message:
        spec = await self.spec(ref.run_id)
        environment = self.environment(spec)
        try:
            provider = provider_for(spec)
        except UnknownModelError as error:
            raise permanent(str(error), "UnknownModel") from error
        tools = [tool.info() for tool in environment.tools.values()]
        completion = await provider.complete(
            functools.partial(self.store.conversation, ref.run_id), tools, ref.step
        )
        message = completion.message
        final_answer = {} if message.tool_calls else {"answer": message.content}
        recorded, _ = await self.store.record(
            ref.run_id,
            model_key(ref.step),
            EventType.message,
            message.model_dump(),
            usage=completion.usage,
            run_fields={"steps": ref.step, **final_answer},
        )
        return Message.model_validate(recorded.data)
