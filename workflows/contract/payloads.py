"""What workflows and activities pass each other: small models, since history keeps every
one. Names, counters and ids only: the conversation and the state live in the trace store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.contrib.workflow_streams import WorkflowStreamState

from loopline.models import (
    BatchStatus,
    RemoteCallPolicy,
    RunStatus,
    StopReason,
    ToolResult,
)


class UserMessage(BaseModel):
    message_id: str
    content: str


class RunInput(BaseModel):
    run_id: str
    environment: str
    scenario: str
    model: str
    max_steps: int
    max_duration_seconds: int | None = None
    model_is_local: bool = Field(
        default=True, description="In-process model (scripted): run its steps as local activities."
    )
    user_model: str | None = None
    user_model_is_local: bool = True
    max_user_turns: int = 0
    client_tools: list[str] = Field(default_factory=list)
    input_timeout_seconds: int | None = None
    session: bool = False
    idle_timeout_seconds: int | None = None
    continue_as_new_after_events: int = Field(
        default=10_000, description="History length at which an idle session continues as new."
    )
    carry: SessionCarry | None = Field(
        default=None, description="Set on a continued-as-new run: where the previous one was."
    )
    judge_model: str | None = Field(default=None, description="Set when a rubric is judged.")
    judge_model_is_local: bool = True
    callback_retry_count: int | None = Field(
        default=None, description="Set when the run has a callback."
    )
    batch_id: str | None = None
    taskset_id: str | None = None
    model_queue_prefix: str | None = Field(
        default=None,
        description="Provider model calls go to this prefix + provider, a task queue whose "
        "rate limit holds across runs; unset: the run's own task queue.",
    )
    remote: RemoteCallPolicy | None = Field(
        default=None,
        description="Set when the environment or the tools are remote: tool calls are then "
        "regular activities, and every remote call is retried this many times at most.",
    )
    max_repeated_tool_calls: int = Field(
        default=0, description="Identical tool calls in a row that stop the run; 0: never."
    )
    agent_is_client: bool = Field(
        default=False,
        description="The agent runs in the caller (an MCP session): its tool calls and its "
        "answer arrive as updates, and no model is called.",
    )


class SessionCarry(BaseModel):
    """The compact state a session hands to its next run when it continues as new."""

    step: int
    turns: int
    deadline: datetime | None
    recent_message_ids: list[str]
    queued_messages: list[UserMessage]
    close_requested: bool
    stream: WorkflowStreamState | None = None


class StatusChange(BaseModel):
    """A status the workflow reached that the trace store must show (recorded once by key)."""

    run_id: str
    key: str
    status: RunStatus
    step: int
    pending_tool_calls: list[ToolCallRef] | None = None


class UserMessagesInput(BaseModel):
    run_id: str
    turn: int
    messages: list[UserMessage]


class ToolResultsInput(BaseModel):
    run_id: str
    step: int
    calls: list[ToolCallRef]
    results: list[ToolResult]


class ToolCallRef(BaseModel):
    id: str
    name: str


class StepRef(BaseModel):
    run_id: str
    step: int
    model: str


class ModelStepResult(BaseModel):
    tool_calls: list[ToolCallRef]
    empty: bool = Field(default=False, description="Neither text nor tool calls.")
    calls_signature: str | None = Field(
        default=None, description="A digest of the tool calls' names and arguments."
    )


class AgentStepInput(BaseModel):
    """A model step whose server-side tool calls run in the same activity."""

    run_id: str
    step: int
    model: str
    stop_if_repeated: str | None = Field(
        default=None,
        description="A calls signature that ends the run as looping if the model repeats "
        "it: its calls are then not run.",
    )


class AgentStepResult(BaseModel):
    reply: ModelStepResult
    tools_ran: bool = Field(
        default=True,
        description="The step dealt with the reply's server-side tool calls: ran them, or "
        "none when the reply repeats what ends the run as looping.",
    )
    stopped: bool = Field(default=False, description="One of them, a stop tool, ended the turn.")


TOKENS_TOPIC = "tokens"


class TokenDelta(BaseModel):
    """Streamed model text, published on the run workflow's stream under TOKENS_TOPIC.

    Items are coalesced (one per fraction of a second, not one per token). A retried model
    call streams again from the start under a higher `attempt`.
    """

    step: int
    attempt: int
    purpose: str
    text: str


class UserTurnRef(BaseModel):
    run_id: str
    step: int
    turn: int


class UserTurnResult(BaseModel):
    done: bool


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


class ClientToolCall(BaseModel):
    """A tool call of an agent that runs in the caller; `call_id` is its idempotency key."""

    call_id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ClientToolCallAck(BaseModel):
    """Where the call's result is recorded (the tool message of `step`)."""

    step: int
    call_id: str
    is_error: bool
    stop: bool


class ClientAnswer(BaseModel):
    """The caller's agent is done: its answer (None: it gives none) is evaluated."""

    answer: str | None = None


class ClientStepInput(BaseModel):
    """One step of an agent that runs in the caller, to record as a model reply would be."""

    run_id: str
    step: int
    call: ClientToolCall | None = None
    answer: str | None = None


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
    close_requested: bool = False
    session: bool = False
    turns: int = 0
    queued_messages: int = 0
    pending_tool_calls: list[ToolCallRef] = Field(default_factory=list)


class RunRef(BaseModel):
    run_id: str


class BatchInput(BaseModel):
    batch_id: str
    total: int
    max_parallel: int
    next_index: int = Field(default=0, description="Rollouts started before continue-as-new.")
    continue_as_new_after_events: int = 10_000


class RolloutPage(BaseModel):
    batch_id: str
    offset: int
    limit: int


class BatchEnd(BaseModel):
    batch_id: str
    status: BatchStatus


class BatchProgress(BaseModel):
    """Answer of the batch workflow's `progress` query."""

    batch_id: str
    total: int
    started: int
    active: int
    cancel_requested: bool


class RelayMessage(BaseModel):
    """A run's message on its way to the project's relay webhook (body of the POST)."""

    message_id: str
    project: str
    run_id: str
    task: str | None
    text: str
