"""What every model provider offers the model-step activity."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from loopline.models import Message, ToolInfo, Usage


class Completion(BaseModel):
    message: Message
    usage: Usage


class ModelProvider(Protocol):
    async def complete(
        self, messages: list[Message], tools: list[ToolInfo], step: int
    ) -> Completion: ...
