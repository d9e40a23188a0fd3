"""The offline `scripted` model: plays the script sent with the run, turn by turn.

It is deterministic (the same step always gives the same message), needs no key and no
network, and so drives the demo, the tests and the benchmarks.
"""

from __future__ import annotations

import asyncio

from activities.providers.base import Completion, ConversationLoader
from loopline.models import Message, Script, ScriptedStep, ToolCall, ToolInfo, Usage

EXHAUSTED_ANSWER = "(the script has no more steps)"


class ScriptedModel:
    def __init__(self, script: Script) -> None:
        self._script = script

    async def complete(
        self, conversation: ConversationLoader, tools: list[ToolInfo], step: int
    ) -> Completion:
        """Play turn `step`; the script ignores the conversation, so it is never loaded."""
        turn = self._turn(step)
        if turn.delay_seconds:
            await asyncio.sleep(turn.delay_seconds)
        message = Message(
            role="assistant",
            content=turn.content,
            tool_calls=[
                ToolCall(id=f"call_{step}_{index}", name=call.name, arguments=call.arguments)
                for index, call in enumerate(turn.tool_calls)
            ],
        )
        return Completion(message=message, usage=Usage(model_calls=1))

    def _turn(self, step: int) -> ScriptedStep:
        steps = self._script.steps
        index = step - 1
        if self._script.repeat:
            return steps[index % len(steps)]
        if index < len(steps):
            return steps[index]
        return ScriptedStep(content=EXHAUSTED_ANSWER)
