"""The pydantic models shared by the API, the workflows and the activities.

Everything that crosses a process boundary (HTTP bodies, workflow and activity inputs and
results, rows of the trace store) is one of these models, serialised by the SDK's pydantic
data converter.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_STEPS_LIMIT = 500
SCRIPTED_MODEL = "scripted"


class RunStatus(StrEnum):
    pending = "pending"
    running = "running"
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


class EventType(StrEnum):
    message = "message"
    status = "status"
    reward = "reward"
    log = "log"


# --- conversation ----------------------------------------------------------------------------


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    """One message of the normalised conversation; providers translate at their edge."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False


class Usage(BaseModel):
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


# --- the scripted model ----------------------------------------------------------------------


class ScriptedToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class ScriptedStep(BaseModel):
    """One turn of the scripted model: tool calls, or (with none) a final answer."""

    model_config = ConfigDict(extra="forbid")

    content: str = ""
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    delay_seconds: float = Field(
        default=0.0, ge=0.0, le=60.0, description="Simulated model latency for this turn."
    )


class Script(BaseModel):
    """What the offline `scripted` model says, turn by turn."""

    model_config = ConfigDict(extra="forbid")

    steps: list[ScriptedStep] = Field(min_length=1, max_length=MAX_STEPS_LIMIT)
    repeat: bool = Field(
        default=False,
        description="Start again from the first step when the script runs out "
        "(an agent that never finishes on its own).",
    )


# --- HTTP: runs ------------------------------------------------------------------------------


class RunRequest(BaseModel):
    """Body of `POST /v1/runs`."""

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(
        default=None,
        pattern=RUN_ID_PATTERN,
        description="Client-chosen id; starting the same run id twice with the same body "
        "returns the existing run instead of starting another.",
    )
    environment: str = Field(min_length=1)
    scenario: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    model: str = Field(default=SCRIPTED_MODEL, min_length=1)
    script: Script | None = Field(default=None, description="Required when model is 'scripted'.")
    max_steps: int = Field(default=100, ge=1, le=MAX_STEPS_LIMIT)
    max_duration_seconds: int | None = Field(
        default=None, ge=1, le=30 * 24 * 3600, description="Deadline for the agent loop."
    )
    sync: bool = Field(default=False, description="Wait for the result (up to `timeout`).")
    timeout: int = Field(default=300, ge=30, le=600, description="Seconds to wait when sync.")

    def identity(self) -> dict[str, Any]:
        """The fields that define the run; an idempotent retry must repeat them."""
        return self.model_dump(mode="json", exclude={"run_id", "sync", "timeout"})


class RunSpec(BaseModel):
    """What the activities need to know about a run, kept in the trace store."""

    environment: str
    scenario: str
    args: dict[str, Any]
    model: str
    script: Script | None = None
    max_steps: int


class EventView(BaseModel):
    seq: int
    type: EventType
    created_at: datetime
    data: dict[str, Any]


class RunView(BaseModel):
    run_id: str
    workflow_id: str
    status: RunStatus
    environment: str
    scenario: str
    model: str
    args: dict[str, Any]
    max_steps: int
    steps: int
    stop_reason: StopReason | None = None
    reward: float | None = None
    reward_details: dict[str, Any] | None = None
    answer: str | None = None
    error: str | None = None
    usage: Usage
    created_at: datetime
    ended_at: datetime | None = None
    torn_down: bool = False
    temporal_ui_url: str | None = None
    trajectory: list[EventView] | None = None
    state: dict[str, Any] | None = None


class RunPage(BaseModel):
    total: int
    limit: int
    offset: int
    runs: list[RunView]


class ToolInfo(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    stop: bool = False


class ScenarioInfo(BaseModel):
    name: str
    description: str
    args_schema: dict[str, Any]
    style: Literal["functions", "generator"]


class EnvironmentInfo(BaseModel):
    name: str
    description: str
    stateful: bool
    scenarios: list[ScenarioInfo]
    tools: list[ToolInfo]


# --- workflow and activity payloads (kept small: history grows with every step) --------------


class RunInput(BaseModel):
    run_id: str
    environment: str
    scenario: str
    model: str
    max_steps: int
    max_duration_seconds: int | None = None


class ToolCallRef(BaseModel):
    id: str
    name: str


class StepRef(BaseModel):
    run_id: str
    step: int
    model: str


class ModelStepResult(BaseModel):
    tool_calls: list[ToolCallRef]


class ToolCallInput(BaseModel):
    run_id: str
    step: int
    call_id: str


class ToolCallResult(BaseModel):
    is_error: bool
    stop: bool


class EvaluateInput(BaseModel):
    run_id: str
    stop_reason: StopReason


class EvaluateResult(BaseModel):
    reward: float
    success: bool


class TeardownInput(BaseModel):
    run_id: str
    status: RunStatus
    stop_reason: StopReason
    steps: int
    error: str | None = None


class RunResult(BaseModel):
    run_id: str
    status: RunStatus
    stop_reason: StopReason
    steps: int
    reward: float | None = None
    error: str | None = None


class RunState(BaseModel):
    """Answer of the `state` query: where a live run is."""

    run_id: str
    status: RunStatus
    step: int
    max_steps: int
    stop_reason: StopReason | None = None
    reward: float | None = None
    waiting_on: str | None = None
    cancel_requested: bool = False


class CancelRequest(BaseModel):
    reason: str = Field(default="cancelled by request", max_length=1000)
