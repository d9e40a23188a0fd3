"""Bodies that clients send: run and batch requests, commands, logs, patches, artifacts,
tasksets, keys. Each says what it accepts, so that a bad request is refused at its field."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    WithJsonSchema,
    field_validator,
)

from loopline.models.config import HttpUrlText, ModelConfig, Provider, Scope
from loopline.models.conversation import (
    MAX_MESSAGE_CHARS,
    MAX_STEPS_LIMIT,
    MAX_WAIT_SECONDS,
    RUN_ID_PATTERN,
    SCRIPTED_MODEL,
    TOOL_NAME_PATTERN,
    RunStatus,
    Script,
    ToolInfo,
)

# Artifact names are relative paths whose segments never start with a dot: no "..", no "/x".
# The trace store keeps artifact names of up to 1,000 characters; half that is plenty.
ARTIFACT_NAME_MAX_CHARS = 500
ARTIFACT_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*){0,9}$"
TASK_SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
TASKSET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]{0,127}$"
MAX_ROLLOUTS = 20_000
# Free-form JSON a caller attaches: small notes, not payloads (those belong in artifacts).
MAX_METADATA_BYTES = 64 * 1024
MAX_OUTPUT_BYTES = 1024 * 1024
# Standard padded base64 (RFC 4648): what artifact uploads take, and all of it decodes.
BASE64_PATTERN = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
# The statuses a caller may set; the workflow owns every other.
SETTABLE_STATUSES = (RunStatus.cancelled, RunStatus.completed)
# Documented as the settable values only; any other is refused with what to set instead.
SettableStatus = Annotated[
    RunStatus,
    WithJsonSchema(
        {
            "type": "string",
            "enum": [status.value for status in SETTABLE_STATUSES],
            "description": "cancelled cancels the run; completed closes a session.",
        }
    ),
]


def json_at_most(limit: int) -> AfterValidator:
    """A value whose JSON is at most `limit` bytes; beyond, a refusal that says where else
    the data belongs."""

    def check(value: Any) -> Any:
        size = len(json.dumps(value, default=str))
        if size > limit:
            raise ValueError(
                f"{size:,} bytes of JSON, over the limit of {limit:,}: keep large data in an "
                "artifact (PUT /v1/runs/{run_id}/artifacts/{name}) and put its name here"
            )
        return value

    return AfterValidator(check)


Metadata = Annotated[dict[str, Any], json_at_most(MAX_METADATA_BYTES)]
Output = Annotated[Any, json_at_most(MAX_OUTPUT_BYTES)]
ClientState = Annotated[dict[str, Any] | None, json_at_most(MAX_OUTPUT_BYTES)]


def _iso_8601_only(value: Any) -> Any:
    # pydantic would also read a number (or a query string's "1700000000") as Unix seconds,
    # which the API documents nowhere.
    if isinstance(value, datetime) or (isinstance(value, str) and not _is_number(value)):
        return value
    raise ValueError("write the time as ISO 8601, e.g. 2026-01-31T12:00:00Z")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _unset(value: object) -> bool:
    """Fields added after records were first stored are left out of dumps when unset
    (`exclude_if`), so that a task stored, or a run or batch started, before they existed
    keeps its definition and identity."""
    return value is None


# A point in time from a client: ISO 8601 text, as the OpenAPI document says.
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_8601_only)]


# How long a presigned download link works unless the caller asks otherwise.
DEFAULT_LINK_SECONDS = 3600
BATCH_SOURCE_API = "api"


class ClientTool(BaseModel):
    """A tool the caller executes: Loopline shows it to the model and waits for its result."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = Field(default="", max_length=10_000)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments (an object).",
    )

    def info(self) -> ToolInfo:
        return ToolInfo(name=self.name, description=self.description, parameters=self.parameters)


class RunRequest(BaseModel):
    """Body of `POST /v1/runs`."""

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(
        default=None,
        pattern=RUN_ID_PATTERN,
        description="Client-chosen id; starting the same run id twice with the same body "
        "returns the existing run instead of starting another.",
    )
    # Empty means unset: the task's, with `task` (starting a run says if neither is set).
    environment: str = Field(
        default="", min_length=1, description="Required unless `task` names the task's."
    )
    scenario: str = Field(
        default="", min_length=1, description="Required unless `task` names the task's."
    )
    args: dict[str, Any] = Field(default_factory=dict)
    model: str | ModelConfig = Field(
        default=SCRIPTED_MODEL,
        description="'scripted', 'provider/model' (e.g. 'openai/gpt-4o') or a model config; "
        "with `task` and unset: the task's agent_config.model, if it names one.",
    )
    provider_api_keys: dict[Provider, SecretStr] = Field(
        default_factory=dict,
        description="Keys by provider for models whose config carries no api_key; "
        "never stored in clear text.",
    )
    script: Script | None = Field(
        default=None,
        description="Required when model is 'scripted', unless `task` has a script of its "
        "own (this one wins over it).",
    )
    user_model: str | ModelConfig | None = Field(
        default=None,
        description="A second model that plays the user for multi-turn scenarios: when the "
        "agent answers, it replies as the user, until it says it is done.",
    )
    user_script: Script | None = Field(
        default=None, description="What a 'scripted' user_model says, turn by turn."
    )
    max_user_turns: int = Field(default=10, ge=1, le=MAX_STEPS_LIMIT)
    client_tools: list[ClientTool] = Field(
        default_factory=list,
        max_length=128,
        description="Tools the caller runs itself: when the model calls one, the run waits "
        "(status awaiting_input) for POST /v1/runs/{id}/continue with the results.",
    )
    input_timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WAIT_SECONDS,
        description="How long to wait for client tool results; unset: without a limit.",
    )
    session: bool = Field(
        default=False,
        description="Stay open after the agent answers (status idle), waiting for the next "
        "user message, until closed or idle for idle_timeout_seconds.",
    )
    idle_timeout_seconds: int = Field(
        default=24 * 3600, ge=1, le=MAX_WAIT_SECONDS, description="Sessions only."
    )
    prompt: str | None = Field(
        default=None,
        max_length=MAX_MESSAGE_CHARS,
        description="Replaces the prompt the scenario's setup writes (a task description).",
    )
    include_tools: list[str] | None = Field(
        default=None, description="Only these environment tools are offered to the model."
    )
    exclude_tools: list[str] = Field(
        default_factory=list, description="Environment tools the model is not offered."
    )
    evaluation: EvaluationConfig = Field(
        default_factory=lambda: EvaluationConfig(),
        description="Evaluators beside the scenario's own: expected tool calls, a rubric.",
    )
    callback: CallbackConfig | None = Field(
        default=None, description="POST the result to a URL when the run ends."
    )
    taskset: str | None = Field(
        default=None, description="A taskset id or name: the run joins that taskset's job."
    )
    task: str | None = Field(
        default=None,
        pattern=TASK_SLUG_PATTERN,
        exclude_if=_unset,
        description="The slug of a task of `taskset` that the run plays: its environment, "
        "scenario, args, prompt, tools, evaluation and script (the run's own script wins); "
        "the run counts as that task in the job's per-task scores. Fields the task sets "
        "may be left out, or must agree with the task.",
    )
    metadata: Metadata = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=50)
    max_steps: int = Field(
        default=100,
        ge=1,
        le=MAX_STEPS_LIMIT,
        description="Model steps per run; in a session, per user message.",
    )
    max_duration_seconds: int | None = Field(
        default=None, ge=1, le=MAX_WAIT_SECONDS, description="Deadline for the agent loop."
    )
    sync: bool = Field(default=False, description="Wait for the result (up to `timeout`).")
    timeout: int = Field(default=300, ge=30, le=600, description="Seconds to wait when sync.")

    def identity(self) -> dict[str, Any]:
        """The fields that define the run; an idempotent retry must repeat them.

        Keys are left out: a retry may carry a rotated key and is still the same run.
        """
        identity = self.model_dump(
            mode="json", exclude={"run_id", "sync", "timeout", "provider_api_keys"}
        )
        for part in ("model", "user_model"):
            if isinstance(identity[part], dict):
                identity[part].pop("api_key", None)
        evaluation = identity["evaluation"]
        if isinstance(evaluation.get("judge_model"), dict):
            evaluation["judge_model"].pop("api_key", None)
        if identity["callback"] is not None:
            identity["callback"].pop("secret", None)
            identity["callback"].pop("headers", None)
        return identity


class UserMessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str | None = Field(
        default=None,
        pattern=RUN_ID_PATTERN,
        description="Sending the same id again is a no-op (safe retries); default: a new id.",
    )
    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class ToolResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(min_length=1, max_length=200)
    content: str = Field(max_length=MAX_MESSAGE_CHARS)
    is_error: bool = False


class ContinueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool_results: list[ToolResult] = Field(min_length=1, max_length=128)


class CloseRequest(BaseModel):
    reason: str = Field(default="closed by request", max_length=1000)


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class LogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry_id: str | None = Field(
        default=None, pattern=RUN_ID_PATTERN, description="Appending the same id twice is a no-op."
    )
    level: LogLevel = LogLevel.info
    message: str = Field(max_length=MAX_MESSAGE_CHARS)
    source: str | None = Field(default=None, max_length=200)
    data: Metadata = Field(default_factory=dict)
    timestamp: IsoDateTime | None = Field(default=None, description="When the producer saw it.")


class AppendLogRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[LogEntry] = Field(min_length=1, max_length=1000)


class RunPatch(BaseModel):
    """Fields a caller may set on a run. `status` is owned by the workflow: `cancelled`
    cancels the run and `completed` closes a session; other values are refused."""

    model_config = ConfigDict(extra="forbid")

    status: SettableStatus | None = None
    stage: str | None = Field(default=None, max_length=200)
    branch: str | None = Field(default=None, max_length=200)
    output: Output = None
    client_state: ClientState = None
    error_message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class ArtifactUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=ARTIFACT_NAME_PATTERN, max_length=ARTIFACT_NAME_MAX_CHARS)
    content_base64: str = Field(json_schema_extra={"pattern": BASE64_PATTERN})
    content_type: str = "application/octet-stream"


class ArtifactBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifacts: list[ArtifactUpload] = Field(min_length=1, max_length=100)


class PresignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=ARTIFACT_NAME_PATTERN, max_length=ARTIFACT_NAME_MAX_CHARS)
    expires_in: int = Field(default=DEFAULT_LINK_SECONDS, ge=1, le=7 * 24 * 3600)


class ApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Who or what uses the key.")
    scopes: list[Scope] = Field(
        default=[Scope.task_read, Scope.task_write], min_length=1, max_length=3
    )


class ExpectedToolCall(BaseModel):
    """A tool call that shows the task was done (a validation check)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    arguments: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments the call must have, with these values; others may be anything.",
    )


class Evaluator(StrEnum):
    scenario = "scenario"
    validation = "validation"
    rubric = "rubric"


class EvaluationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    validation: list[ExpectedToolCall] = Field(
        default_factory=list,
        max_length=100,
        description="Tool calls that must appear in the trajectory (every one, in any order).",
    )
    rubric: str | None = Field(
        default=None,
        max_length=MAX_MESSAGE_CHARS,
        description="Markdown rubric a judge model scores the trajectory against.",
    )
    judge_model: str | ModelConfig | None = Field(
        default=None, description="The judge of the rubric; default: the run's own model."
    )
    judge_script: Script | None = Field(
        default=None, description="What a 'scripted' judge answers (its JSON verdict)."
    )
    weights: dict[Evaluator, float] = Field(
        default_factory=dict,
        description="Weight of each evaluator's score in the reward (default 1 each).",
    )


class CallbackConfig(BaseModel):
    """A webhook that receives the run's result when it ends."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrlText
    include_reward: bool = True
    include_response: bool = True
    include_trajectory: bool = False
    retry_count: int = Field(default=3, ge=0, le=10, description="Retries after a failure.")
    headers: dict[str, str] | None = Field(
        default=None, description="Sent with the POST; stored encrypted, like keys."
    )
    metadata: Metadata | None = Field(default=None, description="Echoed back.")
    secret: SecretStr | None = Field(
        default=None,
        description="HMAC key of the X-Loopline-Signature header; default: this deployment's "
        "callback key (`loopline callback-secret` prints it).",
    )


class TaskEnvironment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    include: list[str] | None = Field(default=None, description="Tool allow-list.")
    exclude: list[str] = Field(default_factory=list, description="Tool deny-list.")


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    system_prompt: str | None = Field(default=None, max_length=100_000)
    model: str | None = Field(
        default=None,
        max_length=200,
        description="'provider/model': the model of the task's runs that name none (a task "
        "run started without a body); a batch's own model wins.",
    )


# A task's rollout_scripts: more than a batch's rollouts per task would never be played.
MAX_TASK_ROLLOUT_SCRIPTS = 1000


class TaskDefinition(BaseModel):
    """One task of a taskset: a scenario with fixed args and how its runs are judged."""

    model_config = ConfigDict(extra="forbid")

    slug: str | None = Field(
        default=None,
        pattern=TASK_SLUG_PATTERN,
        description="Stable id within the taskset: uploading it again updates the task. "
        "Omitted: Loopline assigns a 4-digit one, so 4-digit slugs are reserved.",
    )
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(
        default=None,
        max_length=MAX_MESSAGE_CHARS,
        description="The prompt, instead of the one the scenario's setup writes.",
    )
    scenario: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    env: TaskEnvironment
    agent_config: AgentConfig | None = None
    validation: list[ExpectedToolCall] | None = None
    rubric: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    tags: list[str] = Field(default_factory=list, max_length=50)
    metadata: Metadata = Field(default_factory=dict)
    script: Script | None = Field(
        default=None,
        exclude_if=_unset,
        description="What model 'scripted' plays in this task's runs (e.g. its gold "
        "actions); wins over the batch's script and rollout_scripts.",
    )
    rollout_scripts: list[Script] | None = Field(
        default=None,
        exclude_if=_unset,
        min_length=1,
        max_length=MAX_TASK_ROLLOUT_SCRIPTS,
        description="For model 'scripted': rollout r of this task plays script r mod n "
        "(a run started alone plays the first); wins over `script`.",
    )

    @field_validator("slug")
    @classmethod
    def _not_reserved(cls, slug: str | None) -> str | None:
        if slug is not None and slug.isdigit() and len(slug) == 4:
            raise ValueError(
                f"slug {slug!r} is a 4-digit number, which is reserved for the slugs "
                "Loopline assigns; use another slug (e.g. 'task-" + slug + "') or omit it"
            )
        return slug


class TasksetUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TASKSET_NAME_PATTERN, description="Created if it does not exist.")
    description: str | None = Field(default=None, max_length=10_000)
    tasks: list[TaskDefinition] = Field(min_length=1, max_length=10_000)


class TaskOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_json: TaskDefinition | None = Field(
        default=None, description="Replaces the whole task (its slug stays)."
    )
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(
        default=None, max_length=MAX_MESSAGE_CHARS, description="The task's prompt."
    )
    rubric_markdown: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    client_context: dict[str, Any] | None = Field(
        default=None, description="Opaque caller data, kept in each rollout's metadata."
    )
    script: Script | None = Field(
        default=None,
        exclude_if=_unset,
        description="What model 'scripted' plays in this task's rollouts, instead of the "
        "task's own scripts and the batch's.",
    )
    rollout_scripts: list[Script] | None = Field(
        default=None,
        exclude_if=_unset,
        min_length=1,
        max_length=MAX_TASK_ROLLOUT_SCRIPTS,
        description="Rollout r of this task plays script r mod n, instead of the task's "
        "own scripts and the batch's; wins over `script`.",
    )


class BatchRequest(BaseModel):
    """Body of `POST /v1/batches`: tasks times rollout_count runs, at most max_parallel at once."""

    model_config = ConfigDict(extra="forbid")

    batch_id: str | None = Field(
        default=None,
        pattern=RUN_ID_PATTERN,
        description="Client-chosen id; repeating the same request returns the same batch.",
    )
    name: str | None = Field(default=None, max_length=200)
    taskset: str | None = Field(default=None, description="A taskset id or name.")
    tasks: list[TaskDefinition] | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="Inline tasks, instead of a taskset.",
    )
    task_slugs: list[str] | None = Field(
        default=None, min_length=1, description="Run only these tasks of the taskset."
    )
    rollout_count: int = Field(default=1, ge=1, le=1000, description="Runs per task.")
    max_parallel: int = Field(default=10, ge=1, le=1000, description="Runs at once, at most.")
    model: str | ModelConfig = SCRIPTED_MODEL
    provider_api_keys: dict[Provider, SecretStr] = Field(default_factory=dict)
    script: Script | None = Field(default=None, description="For model 'scripted'.")
    rollout_scripts: list[Script] | None = Field(
        default=None,
        min_length=1,
        description="For model 'scripted': rollout r of every task plays script r mod n "
        "(wins over `script`). A task's own scripts, and task_overrides', win over both.",
    )
    user_model: str | ModelConfig | None = None
    user_script: Script | None = None
    judge_model: str | ModelConfig | None = Field(
        default=None, description="Judge of tasks with a rubric; default: the agent's model."
    )
    judge_script: Script | None = None
    max_steps: int = Field(default=100, ge=1, le=MAX_STEPS_LIMIT)
    max_duration_seconds: int | None = Field(default=None, ge=1, le=MAX_WAIT_SECONDS)
    task_overrides: dict[str, TaskOverride] = Field(
        default_factory=dict, description="By task slug."
    )
    callback: CallbackConfig | None = Field(
        default=None, description="Sent for every rollout when it ends."
    )
    metadata: Metadata = Field(default_factory=dict)
    source: str = Field(
        default=BATCH_SOURCE_API,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$",
        description="Where the batch was started from; listings can filter on it.",
    )

    def identity(self) -> dict[str, Any]:
        """The fields that define the batch (keys and callback secrets left out)."""
        identity = self.model_dump(mode="json", exclude={"batch_id", "provider_api_keys"})
        for part in ("model", "user_model", "judge_model"):
            if isinstance(identity[part], dict):
                identity[part].pop("api_key", None)
        if identity["callback"] is not None:
            identity["callback"].pop("secret", None)
            identity["callback"].pop("headers", None)
        return identity


class CancelRequest(BaseModel):
    reason: str = Field(default="cancelled by request", max_length=1000)
