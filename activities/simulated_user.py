"""The simulated user: a second model that answers the agent as the task's user would.

It sees the conversation from the other side (the agent's answers as the messages it
receives, its own earlier words as its replies, no tool traffic) and says it is done with
STOP_MARKER, after which the episode ends.
"""

from __future__ import annotations

from temporalio import activity

from activities.errors import permanent
from activities.model_calls import ModelCallingActivities
from activities.providers import Ask, Purpose
from activities.providers.scripted import EXHAUSTED_ANSWER
from loopline.models import EventType, Message
from loopline.models.conversation import STOP_MARKER
from workflows.contract import stubs
from workflows.contract.names import PERSONA_KEY, user_key
from workflows.contract.payloads import UserTurnRef, UserTurnResult

USER_SECRET = "user_model"
DEFAULT_PERSONA = (
    "You are the person who gave an AI assistant the first task below. Stay in that role: "
    "answer its questions briefly, as that person would, and never act as the assistant."
)
RULES = (
    f"When your request has been dealt with, or cannot be, reply with {STOP_MARKER} "
    "(alone, or after a last short message)."
)


class SimulatedUserActivities(ModelCallingActivities):
    @activity.defn(name=stubs.USER_TURN.name)
    async def user_turn(self, ref: UserTurnRef) -> UserTurnResult:
        key = user_key(ref.step)
        recorded = await self.store.event_by_key(ref.run_id, key)
        if recorded is not None:
            return UserTurnResult(done=recorded.data["done"])
        spec = await self.spec(ref.run_id)
        if spec.user_llm is None:
            raise permanent(f"run {ref.run_id} has no user_model", "NoUserModel")

        async def as_the_user() -> list[Message]:
            persona = await self.store.event_by_key(ref.run_id, PERSONA_KEY)
            described = persona.data["persona"] if persona else DEFAULT_PERSONA
            conversation = await self.store.conversation(ref.run_id)
            return [Message(role="system", content=f"{described}\n\n{RULES}"), *_flip(conversation)]

        priced = await self.caller.call(
            ref.run_id,
            spec.user_llm,
            USER_SECRET,
            spec.user_script,
            Ask(as_the_user, [], ref.turn, Purpose.user),
            stream_step=ref.step,
        )
        said = priced.completion.message.content
        done = STOP_MARKER in said or said in {"", EXHAUSTED_ANSWER}
        text = "" if said == EXHAUSTED_ANSWER else said.replace(STOP_MARKER, "").strip()
        message = Message(role="user", content=text, name="simulated_user")
        recorded, _ = await self.store.record(
            ref.run_id,
            key,
            # A bare "done" adds nothing the agent should read.
            EventType.message if text else EventType.log,
            {**message.model_dump(), "done": done, "usage": priced.completion.usage.model_dump()},
            usage=priced.completion.usage,
        )
        return UserTurnResult(done=recorded.data["done"])


def _flip(conversation: list[Message]) -> list[Message]:
    """The agent's conversation as the user sees it: tool traffic and prompts left out."""
    # Roles swapped, the user speaks first; most APIs want a conversation to open with "user".
    flipped = [Message(role="user", content="(Your conversation with the assistant so far.)")]
    for message in conversation:
        if message.role == "user":
            flipped.append(Message(role="assistant", content=message.content))
        elif message.role == "assistant" and message.content and not message.tool_calls:
            flipped.append(Message(role="user", content=message.content))
    return flipped
