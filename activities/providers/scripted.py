"""The offline `scripted` model: plays the script sent with the run, turn by turn.

It is deterministic (the same turn always gives the same message), needs no key and no
network, and so drives the demo, the tests and the benchmarks. Asked for a summary, it
lists what the summarised messages did.
"""

from __future__ import annotations

import asyncio

from activities.providers.base import Ask, Completion, Purpose
from loopline.models import Message, Script, ScriptedStep, ToolCall, Usage

EXHAUSTED_ANSWER = "(the script has no more steps)"


class ScriptedModel:
    def __init__(self, script: Script | None) -> None:
        self._script = script

    async def complete(self, ask: Ask) -> Completion:
        if ask.purpose is Purpose.summary:
            return await self._summary(ask)
        turn = self._turn(ask.turn)
        if turn.delay_seconds:
            await asyncio.sleep(turn.delay_seconds)
        message = Message(
            role="assistant",
            content=turn.content,
            tool_calls=[
                ToolCall(
                    id=call.id or f"call_{ask.turn}_{index}",
                    name=call.name,
                    arguments=call.arguments,
                )
                for index, call in enumerate(turn.tool_calls)
            ],
        )
        finish = "tool_calls" if message.tool_calls else "stop"
        return Completion(message=message, usage=Usage(model_calls=1), finish_reason=finish)

    async def close(self) -> None:
        return None

    async def _summary(self, ask: Ask) -> Completion:
        # The transcript to summarise is the last message of the summary request.
        transcript = (await ask.conversation())[-1].content
        lines = [line for line in transcript.splitlines() if line.startswith("assistant called")]
        content = f"Earlier, {len(lines)} tool calls: " + "; ".join(
            line.removeprefix("assistant called ") for line in lines
        )
        return Completion(
            message=Message(role="assistant", content=content),
            usage=Usage(model_calls=1),
            finish_reason="stop",
        )

    def _turn(self, turn: int) -> ScriptedStep:
        if self._script is None:
            return ScriptedStep(content=EXHAUSTED_ANSWER)
        steps = self._script.steps
        index = turn - 1
        if self._script.repeat:
            return steps[index % len(steps)]
        if index < len(steps):
            return steps[index]
        return ScriptedStep(content=EXHAUSTED_ANSWER)
