"""A conversation with no tools of its own: the environment of the call-agent API, whose
agents bring their tools with them (client-side tools the caller runs).

It has nothing to check an answer against, so its reward says only whether the agent
answered at all.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

from pydantic import Field

from loopline import Environment, Reward, Setup
from loopline.models import MAX_MESSAGE_CHARS

chat = Environment(
    "chat",
    description="A conversation: the prompt is the user's turn; tools come with the agent.",
)


@chat.scenario(description="Answer the conversation so far.")
async def respond(
    prompt: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)],
) -> AsyncGenerator[Setup | Reward | None, str]:
    yield chat.setup(prompt)
    answer = yield None
    yield chat.reward(1.0 if answer.strip() else 0.0, answered=bool(answer.strip()))
