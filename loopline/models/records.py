"""What Loopline keeps and answers: runs as the trace store holds them, their events,
batches with their scores, tasksets, keys, environments, evaluation and delivery outcomes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from loopline.models.config import (
    DEFAULT_PROJECT,
    ModelConfig,
    RemoteCallPolicy,
    RemoteTransport,
    Scope,
    parse_model,
)
from loopline.models.conversation import (
    SCRIPTED_MODEL,
    EventType,
    RunStatus,
    Script,
    StopReason,
    ToolCall,
    ToolInfo,
    Usage,
)
from loopline.models.http import BATCH_SOURCE_API, Evaluator, ExpectedToolCall, TaskDefinition
from loopline.models.lineage import ReplayReport, RunOrigin


class RunSpec(BaseModel):
    """What the activities need to know about a run, kept in the trace store (no secrets)."""

    environment: str
    scenario: str
    args: dict[str, Any]
    model: str
    llm: ModelConfig = Field(default_factory=lambda: parse_model(SCRIPTED_MODEL))
    script: Script | None = None
    user_llm: ModelConfig | None = None
    user_script: Script | None = None
    max_user_turns: int = 0
    client_tools: list[ToolInfo] = Field(default_factory=list)
    session: bool = False
    max_steps: int
    prompt: str | None = None
    include_tools: list[str] | None = None
    exclude_tools: list[str] = Field(default_factory=list)
    evaluation: EvaluationSpec = Field(default_factory=lambda: EvaluationSpec())
    callback: CallbackSpec | None = None
    batch_id: str | None = None
    taskset_id: str | None = None
    task: str | None = Field(default=None, description="The slug of the task it runs.")
    rollout: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    project: str = DEFAULT_PROJECT
    remote: RemoteCallPolicy | None = Field(
        default=None, description="Set when the environment or the tools are remote."
    )
    origin: RunOrigin | None = None
    recorded_steps: int = Field(
        default=0,
        description="The first model steps, played from `script` whatever the model is: "
        "a fork's steps replayed from its parent.",
    )

    def agent_model(self, step: int) -> ModelConfig:
        """Who plays a model step: the script for the recorded steps, else the run's model."""
        if step <= self.recorded_steps:
            return parse_model(SCRIPTED_MODEL)
        return self.llm

    def offers(self, tool: str) -> bool:
        """Whether the model is shown (and may run) this environment tool."""
        if self.include_tools is not None and tool not in self.include_tools:
            return False
        return tool not in self.exclude_tools


class EventView(BaseModel):
    seq: int
    key: str = Field(
        description="The idempotency key the event was recorded under (step-3:model, "
        "step-3:tool:call_x, evaluate, ...): a retried write under it finds the event instead "
        "of adding another."
    )
    type: EventType
    created_at: datetime
    data: dict[str, Any]
    _json: str | None = PrivateAttr(default=None)

    def json_text(self) -> str:
        """The event as JSON, written once however many live streams send it."""
        if self._json is None:
            self._json = self.model_dump_json()
        return self._json


class RunView(BaseModel):
    run_id: str
    workflow_id: str
    project: str = DEFAULT_PROJECT
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
    session: bool = False
    pending_tool_calls: list[ToolCall] | None = Field(
        default=None, description="While awaiting_input: the calls to answer with /continue."
    )
    stage: str | None = None
    branch: str | None = None
    output: Any = None
    client_state: dict[str, Any] | None = None
    error_message: str | None = Field(
        default=None, description="An error reported by the caller (PATCH), beside `error`."
    )
    success: bool | None = Field(
        default=None, description="Whether every evaluator counted the run a success."
    )
    evaluations: list[EvaluatorResult] | None = Field(
        default=None, description="What each evaluator said; `reward` combines their scores."
    )
    callback: CallbackOutcome | None = None
    batch_id: str | None = None
    taskset_id: str | None = None
    task: str | None = None
    rollout: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    origin: RunOrigin | None = Field(
        default=None, description="The recorded run this replay or fork was made from."
    )
    trajectory: list[EventView] | None = None
    state: dict[str, Any] | None = None
    incarnation: str = Field(
        default="", exclude=True, description="Which row of those that had this run id."
    )


class ReplayResult(BaseModel):
    """The replay run, and with `wait` its report (None while it is still running)."""

    run: RunView
    report: ReplayReport | None = None


class ForkResult(BaseModel):
    runs: list[RunView]
    batch_id: str | None = Field(
        default=None, description="With rollouts: the job the forks share (GET /v1/batches)."
    )


class RunPage(BaseModel):
    total: int
    limit: int
    offset: int
    runs: list[RunView]


class MessageAck(BaseModel):
    run_id: str
    message_id: str
    duplicate: bool = Field(description="This id was sent before; nothing was queued again.")


class ContinueAck(BaseModel):
    step: int


class AppendLogResult(BaseModel):
    appended: int
    duplicates: int


class ArtifactInfo(BaseModel):
    name: str
    storage_path: str
    size: int
    sha256: str
    content_type: str
    created_at: datetime


class SignedURL(BaseModel):
    url: str
    expires_at: datetime


class ConnectionToken(BaseModel):
    token: str
    run_id: str
    expires_at: datetime
    grants: list[str]


class ApiKeyView(BaseModel):
    key_id: str
    name: str
    project: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None = None


class NewApiKey(ApiKeyView):
    key: str = Field(description="The secret; shown this once, stored only as a hash.")


class ScenarioInfo(BaseModel):
    name: str
    description: str
    args_schema: dict[str, Any]
    style: Literal["functions", "generator"]


class RemoteStatus(BaseModel):
    """Where a remote environment is served and whether it answered just now."""

    transport: RemoteTransport
    target: str = Field(description="The server's URL (without credentials) or command.")
    reachable: bool
    error: str | None = Field(default=None, description="Why it could not be reached.")
    checked_at: datetime


class EnvironmentInfo(BaseModel):
    name: str
    description: str
    stateful: bool
    scenarios: list[ScenarioInfo]
    tools: list[ToolInfo]
    kind: Literal["local", "remote"] = "local"
    remote: RemoteStatus | None = Field(
        default=None, description="Set for remote environments (MCP or HTTP tool servers)."
    )


class EvaluationSpec(BaseModel):
    validation: list[ExpectedToolCall] = Field(default_factory=list)
    rubric: str | None = None
    judge: ModelConfig | None = None
    judge_script: Script | None = None
    weights: dict[Evaluator, float] = Field(default_factory=dict)


class EvaluatorResult(BaseModel):
    evaluator: Evaluator
    score: float = Field(description="0 to 1 for validation and rubric; the scenario's reward.")
    success: bool
    weight: float
    details: dict[str, Any] = Field(default_factory=dict)
    reasoning: str | None = Field(default=None, description="The judge's reasoning (rubric).")


class CallbackSpec(BaseModel):
    """A callback as the trace store keeps it: headers and secret are sealed elsewhere."""

    url: str
    include_reward: bool
    include_response: bool
    include_trajectory: bool
    retry_count: int
    metadata: dict[str, Any] | None = None


class DeliveryStatus(StrEnum):
    pending = "pending"
    retrying = "retrying"
    delivered = "delivered"
    failed = "failed"


class CallbackOutcome(BaseModel):
    status: DeliveryStatus
    attempts: int = 0
    status_code: int | None = None
    error: str | None = None
    delivered_at: datetime | None = None


class TaskView(BaseModel):
    slug: str
    task: TaskDefinition
    version: int
    created_at: datetime
    updated_at: datetime


class TasksetView(BaseModel):
    taskset_id: str
    name: str
    description: str | None
    version: int = Field(description="Goes up by one with every upload that changes a task.")
    task_count: int
    job_id: str = Field(description="The batch that runs started with this taskset join.")
    created_at: datetime
    updated_at: datetime
    tasks: list[TaskView] | None = None


class TasksetPage(BaseModel):
    total: int
    limit: int
    offset: int
    tasksets: list[TasksetView]


class TasksetUploadResult(BaseModel):
    taskset_id: str
    name: str
    version: int
    created: list[str]
    updated: list[str]
    unchanged: list[str]


class BatchKind(StrEnum):
    batch = "batch"
    # The standing collection of a taskset's runs started one by one.
    job = "job"


class BatchStatus(StrEnum):
    pending = "pending"
    running = "running"
    cancelling = "cancelling"
    completed = "completed"
    cancelled = "cancelled"
    failed = "failed"
    open = "open"

    @property
    def is_final(self) -> bool:
        return self in {BatchStatus.completed, BatchStatus.cancelled, BatchStatus.failed}


class StatusCounts(BaseModel):
    total: int = 0
    pending: int = 0
    running: int = Field(default=0, description="Also awaiting_input and idle runs.")
    completed: int = 0
    failed: int = 0
    cancelled: int = 0


class TaskScore(BaseModel):
    task: str
    rollouts: int
    completed: int
    failed: int
    cancelled: int
    mean_reward: float | None
    success_rate: float | None
    pass_at_k: dict[int, float]
    stop_reasons: dict[str, int] = Field(default_factory=dict)


class BatchScores(BaseModel):
    mean_reward: float | None = Field(description="Over runs that ended with a reward.")
    success_rate: float | None = Field(description="Successes over completed and failed runs.")
    pass_at_k: dict[int, float] = Field(
        description="Unbiased pass@k, averaged over tasks with at least k ended rollouts."
    )
    stop_reasons: dict[str, int] = Field(
        default_factory=dict,
        description="Ended runs by stop reason: empty_reply and repeated_tool_call count "
        "a weak model's failures.",
    )
    tasks: list[TaskScore]


class BatchView(BaseModel):
    batch_id: str
    kind: BatchKind
    name: str | None
    status: BatchStatus
    taskset_id: str | None
    model: str | None
    rollout_count: int
    max_parallel: int | None
    counts: StatusCounts
    scores: BatchScores
    usage: Usage
    run_ids: list[str] | None = None
    cancel_requested: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    source: str = BATCH_SOURCE_API
    workflow_id: str | None
    temporal_ui_url: str | None = None
    created_at: datetime
    ended_at: datetime | None = None


class BatchPage(BaseModel):
    total: int
    limit: int
    offset: int
    batches: list[BatchView]


class BatchCancelResult(BaseModel):
    batch_id: str
    cancelled_runs: int = Field(description="Active runs asked to stop, and runs never started.")


class BatchDeleteResult(BaseModel):
    batch_id: str
    deleted_runs: int


class RelayAck(BaseModel):
    message_id: str
    status: Literal["queued"] = "queued"
    workflow_id: str


class EventFilter(BaseModel):
    """Which events of a run a reader wants: after a seq, of some types, in a time window."""

    model_config = ConfigDict(frozen=True)

    after: int = 0
    limit: int | None = None
    types: tuple[EventType, ...] = ()
    exclude_types: tuple[EventType, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
