"""The vocabulary every part shares: run statuses, events, the normalised conversation,
the scripted model's scripts, tools as the model sees them, and the limits on all of them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


MAX_STEPS_LIMIT = 500
# What a simulated user says (alone or after a last message) when it is done.
STOP_MARKER = "###STOP###"


SCRIPTED_MODEL = "scripted"
# The agent runs in the caller, which sends its tool calls and its answer (an MCP session).
CLIENT_MODEL = "client"


MAX_WAIT_SECONDS = 30 * 24 * 3600


TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


# The longest message: a user message, a client tool's result, a server tool's result.
MAX_MESSAGE_CHARS = 200_000


# Scenario args are parameters, not payloads; larger inputs belong in artifacts or URLs.
MAX_ARGS_BYTES = 1_000_000


class RunStatus(StrEnum):
    pending = "pending"
    running = "running"
    # Waiting for the caller: results of client-side tools, or (a session) the next message.
    awaiting_input = "awaiting_input"
    idle = "idle"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in {RunStatus.completed, RunStatus.failed, RunStatus.cancelled}


class StopReason(StrEnum):
    """Why the agent loop ended."""

    answered = "answered"
    stop_tool = "stop_tool"
    max_steps = "max_steps"
    deadline = "deadline"
    cancelled = "cancelled"
    error = "error"
    user_done = "user_done"
    max_user_turns = "max_user_turns"
    closed = "closed"
    idle_timeout = "idle_timeout"
    input_timeout = "input_timeout"
    empty_reply = "empty_reply"
    repeated_tool_call = "repeated_tool_call"


class EventType(StrEnum):
    message = "message"
    summary = "summary"
    status = "status"
    reward = "reward"
    log = "log"
    artifact = "artifact"
    patch = "patch"
    evaluation = "evaluation"
    callback = "callback"


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    invalid_arguments: str | None = Field(
        default=None,
        description="The model's argument text when it was not a JSON object; the tool is "
        "not run and the model is told why.",
    )


class Message(BaseModel):
    """One message of the normalised conversation; providers translate at their edge."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False


class Usage(BaseModel):
    """Tokens and cost of model calls. Calls of a model without a known price add no cost
    and are counted in `unpriced_calls`, and calls whose server reported no token counts
    add no tokens and are counted in `unreported_calls`: a total is never silently low."""

    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    prompt_cost: float = 0.0
    output_cost: float = 0.0
    unpriced_calls: int = 0
    unreported_calls: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_usd(self) -> float:
        return self.prompt_cost + self.output_cost


class TokenLogprob(BaseModel):
    token: str
    logprob: float


class ScriptedToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    # Left out of dumps when unset, so that scripts sent before it existed keep the run
    # identities they were started with.
    id: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        min_length=1,
        max_length=200,
        description="The call's id; unset: call_{step}_{index}. A replay keeps the recorded ids.",
    )


class ScriptedStep(BaseModel):
    """One turn of the scripted model: tool calls, or (with none) a final answer."""

    model_config = ConfigDict(extra="forbid")

    content: str = ""
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    delay_seconds: float = Field(
        default=0.0, ge=0.0, le=60.0, description="Simulated model latency for this turn."
    )

    @model_validator(mode="after")
    def _ids_unique(self) -> ScriptedStep:
        ids = [call.id for call in self.tool_calls if call.id is not None]
        if len(ids) != len(set(ids)):
            raise ValueError("the tool calls of a step need different ids")
        return self


class Script(BaseModel):
    """What the offline `scripted` model says, turn by turn."""

    model_config = ConfigDict(extra="forbid")

    steps: list[ScriptedStep] = Field(min_length=1, max_length=MAX_STEPS_LIMIT)
    repeat: bool = Field(
        default=False,
        description="Start again from the first step when the script runs out "
        "(an agent that never finishes on its own).",
    )


class ToolInfo(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    stop: bool = False
