"""What every model provider offers the model-step activities."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field

from loopline.models import Message, TokenLogprob, ToolInfo, Usage

ConversationLoader = Callable[[], Awaitable[list[Message]]]
TextSink = Callable[[str], None]


class Purpose(StrEnum):
    """Why a model is asked; the offline scripted model answers each differently."""

    agent = "agent"
    user = "user"
    summary = "summary"
    judge = "judge"


@dataclass(frozen=True)
class Ask:
    conversation: ConversationLoader
    tools: list[ToolInfo]
    turn: int
    purpose: Purpose = Purpose.agent
    on_text: TextSink | None = None


class Completion(BaseModel):
    message: Message
    usage: Usage
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    note: str | None = Field(default=None, description="How the call departed from its config.")


class ModelProvider(Protocol):
    async def complete(self, ask: Ask) -> Completion:
        """The model's next message; `ask.conversation` reads the context from the store."""
        ...

    async def close(self) -> None: ...
