"""What every model provider offers the model-step activity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from pydantic import BaseModel

from loopline.models import Message, ToolInfo, Usage


class Completion(BaseModel):
    message: Message
    usage: Usage


ConversationLoader = Callable[[], Awaitable[list[Message]]]


class ModelProvider(Protocol):
    async def complete(
        self, conversation: ConversationLoader, tools: list[ToolInfo], step: int
    ) -> Completion:
        """The model's next message; `conversation` reads the messages so far from the store."""
        ...
