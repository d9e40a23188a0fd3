"""Agents of the call-agent API: an agent's config (what its version's hash covers), its
inline tools and the chat messages it is called with."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopline.models.conversation import MAX_STEPS_LIMIT, TOOL_NAME_PATTERN


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class ToolResultMessage(BaseModel):
    """The result of one of the agent's tool calls, as the caller hands it back."""

    model_config = ConfigDict(extra="allow")

    role: Literal["tool"]
    tool_call_id: str = Field(min_length=1)
    content: str | None = None


class FunctionSchema(BaseModel):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class AgentTool(BaseModel):
    """An inline tool: the caller runs it, so a call to it suspends the agent."""

    type: Literal["inline"] = "inline"
    json_schema: FunctionSchema
    on_agent_call: Literal["stop", "continue"] | None = None


class AgentKernel(BaseModel):
    """An agent's config: what its version's content hash covers (other fields are kept)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str = Field(min_length=1)
    provider: str | None = None
    template: str | list[ChatMessage] | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = None
    max_iterations: int = Field(default=5, ge=1, le=MAX_STEPS_LIMIT)
    tools: list[AgentTool] = Field(default_factory=list)


class AgentVersion(BaseModel):
    """One version of an agent: its config, named by the hash of that config."""

    agent_id: str
    version_id: str
    path: str
    config: dict[str, Any]
    created_at: datetime
