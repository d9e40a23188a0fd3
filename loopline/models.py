"""The pydantic models shared by the API, the workflows and the activities.

Everything that crosses a process boundary (HTTP bodies, workflow and activity inputs and
results, rows of the trace store) is one of these models, serialised by the SDK's pydantic
data converter.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    computed_field,
    field_validator,
    model_validator,
)
from temporalio.contrib.workflow_streams import WorkflowStreamState

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_STEPS_LIMIT = 500
SCRIPTED_MODEL = "scripted"
MAX_WAIT_SECONDS = 30 * 24 * 3600
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# The longest message: a user message, a client tool's result, a server tool's result.
MAX_MESSAGE_CHARS = 200_000
# Scenario args are parameters, not payloads; larger inputs belong in artifacts or URLs.
MAX_ARGS_BYTES = 1_000_000
# Artifact names are relative paths whose segments never start with a dot: no "..", no "/x".
ARTIFACT_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*){0,9}$"
TASK_SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
TASKSET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]{0,127}$"
MAX_ROLLOUTS = 20_000
BATCH_SOURCE_API = "api"
# Rows from before projects existed, and everything of a single-team deployment.
DEFAULT_PROJECT = "default"
PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# Calls to remote environments' servers, unless an environment's config says otherwise.
REMOTE_CALL_TIMEOUT_SECONDS = 60.0
REMOTE_MAX_ATTEMPTS = 5


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


# --- conversation ----------------------------------------------------------------------------


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
    and are counted in `unpriced_calls`, so a total is never silently low."""

    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    prompt_cost: float = 0.0
    output_cost: float = 0.0
    unpriced_calls: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_usd(self) -> float:
        return self.prompt_cost + self.output_cost


class TokenLogprob(BaseModel):
    token: str
    logprob: float


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


# --- model configuration ---------------------------------------------------------------------


class Provider(StrEnum):
    scripted = "scripted"
    custom = "custom"
    openai = "openai"
    anthropic = "anthropic"
    azure_openai = "azure-openai"
    aws_bedrock = "aws-bedrock"
    gcp = "gcp"

    @property
    def speaks_openai(self) -> bool:
        return self in {Provider.custom, Provider.openai, Provider.azure_openai}


class ModelConfig(BaseModel):
    """Which model plays a part in a run and how it is called."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200, description="e.g. gpt-4o, claude-sonnet-4-5")
    provider: Provider = Field(
        default=Provider.custom,
        description="custom means an OpenAI-compatible server at base_url (vLLM, Ollama, ...).",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="Used for this run only, stored encrypted and dropped when the run ends; "
        "without it the workers' own key (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...) is used.",
    )
    base_url: str | None = Field(default=None, pattern=r"^https?://", max_length=2000)
    api_version: str | None = Field(default=None, description="azure-openai API version.")
    region: str | None = Field(default=None, description="aws-bedrock / gcp region.")
    project_id: str | None = Field(default=None, description="gcp project.")
    temperature: float | None = Field(
        default=None,
        ge=0.0,
        le=2.0,
        description="Unset: the provider's default (reasoning models accept no other).",
    )
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    max_steps: int | None = Field(
        default=None, ge=1, le=MAX_STEPS_LIMIT, description="Overrides the run's max_steps."
    )
    system_prompt: str | None = Field(default=None, max_length=100_000)
    log_prob: bool = Field(default=False, description="Record token log-probabilities.")
    summarize_every_n_turns: int = Field(default=0, ge=0, le=MAX_STEPS_LIMIT)
    context_stride: int = Field(
        default=3, ge=1, description="Recent exchanges kept verbatim when summarising."
    )
    stream: bool = Field(default=True, description="Stream tokens to live subscribers.")
    timeout_seconds: float = Field(default=300.0, gt=0, le=3600)
    tool_server_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=2000,
        description="An HTTP tool server whose tools the agent uses instead of the "
        "environment's own (README: HTTP tool servers). The agent's model only.",
    )

    @property
    def label(self) -> str:
        """How runs show the model: `provider/model`."""
        if self.provider is Provider.scripted:
            return SCRIPTED_MODEL
        return f"{self.provider.value}/{self.model}"

    def without_secret(self) -> ModelConfig:
        return self.model_copy(update={"api_key": None})


def parse_model(value: str | ModelConfig) -> ModelConfig:
    """`scripted`, `provider/model` or a full config, as one config."""
    if isinstance(value, ModelConfig):
        return value
    if value == SCRIPTED_MODEL:
        return ModelConfig(model=SCRIPTED_MODEL, provider=Provider.scripted)
    provider, slash, model = value.partition("/")
    known = ", ".join(p.value for p in Provider if p is not Provider.scripted)
    if not slash or not model:
        raise ValueError(
            f"model {value!r} does not say its provider: write 'provider/model' "
            f"(e.g. 'openai/gpt-4o'; providers: {known}) or 'scripted'"
        )
    try:
        return ModelConfig(model=model, provider=Provider(provider))
    except ValueError:
        raise ValueError(
            f"unknown provider {provider!r} in {value!r}; providers: {known}"
        ) from None


# --- HTTP: runs ------------------------------------------------------------------------------


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
    environment: str = Field(min_length=1)
    scenario: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    model: str | ModelConfig = Field(
        default=SCRIPTED_MODEL,
        description="'scripted', 'provider/model' (e.g. 'openai/gpt-4o') or a model config.",
    )
    provider_api_keys: dict[Provider, SecretStr] = Field(
        default_factory=dict,
        description="Keys by provider for models whose config carries no api_key; "
        "never stored in clear text.",
    )
    script: Script | None = Field(default=None, description="Required when model is 'scripted'.")
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
    metadata: dict[str, Any] = Field(default_factory=dict)
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

    def offers(self, tool: str) -> bool:
        """Whether the model is shown (and may run) this environment tool."""
        if self.include_tools is not None and tool not in self.include_tools:
            return False
        return tool not in self.exclude_tools


class EventView(BaseModel):
    seq: int
    type: EventType
    created_at: datetime
    data: dict[str, Any]


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
    trajectory: list[EventView] | None = None
    state: dict[str, Any] | None = None


class RunPage(BaseModel):
    total: int
    limit: int
    offset: int
    runs: list[RunView]


# --- HTTP: commands, logs, outputs, artifacts --------------------------------------------------


class UserMessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str | None = Field(
        default=None,
        pattern=RUN_ID_PATTERN,
        description="Sending the same id again is a no-op (safe retries); default: a new id.",
    )
    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class UserMessage(BaseModel):
    message_id: str
    content: str


class MessageAck(BaseModel):
    run_id: str
    message_id: str
    duplicate: bool = Field(description="This id was sent before; nothing was queued again.")


class ToolResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(min_length=1, max_length=200)
    content: str = Field(max_length=MAX_MESSAGE_CHARS)
    is_error: bool = False


class ContinueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool_results: list[ToolResult] = Field(min_length=1, max_length=128)


class ContinueAck(BaseModel):
    step: int


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
    data: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime | None = Field(default=None, description="When the producer saw it.")


class AppendLogRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[LogEntry] = Field(min_length=1, max_length=1000)


class AppendLogResult(BaseModel):
    appended: int
    duplicates: int


class RunPatch(BaseModel):
    """Fields a caller may set on a run. `status` is owned by the workflow: `cancelled`
    cancels the run and `completed` closes a session; other values are refused."""

    model_config = ConfigDict(extra="forbid")

    status: RunStatus | None = None
    stage: str | None = Field(default=None, max_length=200)
    branch: str | None = Field(default=None, max_length=200)
    output: Any = None
    client_state: dict[str, Any] | None = None
    error_message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class ArtifactInfo(BaseModel):
    name: str
    storage_path: str
    size: int
    sha256: str
    content_type: str
    created_at: datetime


class ArtifactUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=ARTIFACT_NAME_PATTERN)
    content_base64: str
    content_type: str = "application/octet-stream"


class ArtifactBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifacts: list[ArtifactUpload] = Field(min_length=1, max_length=100)


class PresignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=ARTIFACT_NAME_PATTERN)
    expires_in: int = Field(default=3600, ge=1, le=7 * 24 * 3600)


class SignedURL(BaseModel):
    url: str
    expires_at: datetime


class ConnectionToken(BaseModel):
    token: str
    run_id: str
    expires_at: datetime
    grants: list[str]


class Scope(StrEnum):
    """What an API key may do; `admin` may do everything, including manage its project's keys."""

    task_read = "task:read"
    task_write = "task:write"
    admin = "admin"


class ApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Who or what uses the key.")
    scopes: list[Scope] = Field(
        default=[Scope.task_read, Scope.task_write], min_length=1, max_length=3
    )


class ApiKeyView(BaseModel):
    key_id: str
    name: str
    project: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None = None


class NewApiKey(ApiKeyView):
    key: str = Field(description="The secret; shown this once, stored only as a hash.")


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


class RemoteTransport(StrEnum):
    mcp_http = "mcp-http"
    mcp_stdio = "mcp-stdio"
    http = "http"


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


# --- remote environments ---------------------------------------------------------------------


class RemoteScenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    args_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        description="JSON schema of the scenario's args, checked when a run starts.",
    )


class RemoteEnvironmentConfig(BaseModel):
    """An environment served by an MCP server or an HTTP tool server (README: remote
    environments). Scenarios are the server's `setup` and `evaluate` tools."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = ""
    transport: RemoteTransport
    url: str | None = Field(
        default=None, pattern=r"^https?://", description="mcp-http and http: the server's URL."
    )
    command: list[str] | None = Field(
        default=None, min_length=1, description="mcp-stdio: the server's command line."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="mcp-stdio: extra environment of the server process."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="mcp-http and http: sent with every request."
    )
    scenarios: list[RemoteScenario] = Field(
        default_factory=list,
        description="Scenarios whose args the API checks; empty: any name, the server decides.",
    )
    system_prompt: str | None = None
    call_timeout_seconds: float = Field(default=REMOTE_CALL_TIMEOUT_SECONDS, gt=0, le=3600)
    max_attempts: int = Field(
        default=REMOTE_MAX_ATTEMPTS,
        ge=1,
        le=100,
        description="Tries of a call that failed for a reason "
        "retrying can mend (unreachable, timed out, 5xx), with backoff, before the run fails.",
    )

    @model_validator(mode="after")
    def _has_its_target(self) -> RemoteEnvironmentConfig:
        if self.transport is RemoteTransport.mcp_stdio:
            if not self.command:
                raise ValueError(f"remote environment {self.name!r}: mcp-stdio needs a command")
        elif not self.url:
            raise ValueError(
                f"remote environment {self.name!r}: {self.transport.value} needs a url"
            )
        return self

    @property
    def target(self) -> str:
        """What logs and the registry show: never a URL's credentials or the headers."""
        if self.command:
            return " ".join(self.command)
        parts = urlsplit(self.url or "")
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class RemoteCallPolicy(BaseModel):
    """How the workflow calls a run's remote environment (from its config)."""

    timeout_seconds: float = REMOTE_CALL_TIMEOUT_SECONDS
    max_attempts: int = REMOTE_MAX_ATTEMPTS


# --- evaluation and callbacks ----------------------------------------------------------------


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


class CallbackConfig(BaseModel):
    """A webhook that receives the run's result when it ends."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://", max_length=2000)
    include_reward: bool = True
    include_response: bool = True
    include_trajectory: bool = False
    retry_count: int = Field(default=3, ge=0, le=10, description="Retries after a failure.")
    headers: dict[str, str] | None = Field(
        default=None, description="Sent with the POST; stored encrypted, like keys."
    )
    metadata: dict[str, Any] | None = Field(default=None, description="Echoed back.")
    secret: SecretStr | None = Field(
        default=None,
        description="HMAC key of the X-Loopline-Signature header; default: this deployment's "
        "callback key (`loopline callback-secret` prints it).",
    )


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


# --- tasksets --------------------------------------------------------------------------------


class TaskEnvironment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    include: list[str] | None = Field(default=None, description="Tool allow-list.")
    exclude: list[str] = Field(default_factory=list, description="Tool deny-list.")


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system_prompt: str | None = Field(default=None, max_length=100_000)


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
    metadata: dict[str, Any] = Field(default_factory=dict)

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


# --- batches ---------------------------------------------------------------------------------


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
        default=None, max_length=10_000, description="Inline tasks, instead of a taskset."
    )
    task_slugs: list[str] | None = Field(
        default=None, description="Run only these tasks of the taskset."
    )
    rollout_count: int = Field(default=1, ge=1, le=1000, description="Runs per task.")
    max_parallel: int = Field(default=10, ge=1, le=1000, description="Runs at once, at most.")
    model: str | ModelConfig = SCRIPTED_MODEL
    provider_api_keys: dict[Provider, SecretStr] = Field(default_factory=dict)
    script: Script | None = Field(default=None, description="For model 'scripted'.")
    rollout_scripts: list[Script] | None = Field(
        default=None,
        min_length=1,
        description="For model 'scripted': rollout r of every task plays script r mod n.",
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
    metadata: dict[str, Any] = Field(default_factory=dict)
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


class BatchScores(BaseModel):
    mean_reward: float | None = Field(description="Over runs that ended with a reward.")
    success_rate: float | None = Field(description="Successes over completed and failed runs.")
    pass_at_k: dict[int, float] = Field(
        description="Unbiased pass@k, averaged over tasks with at least k ended rollouts."
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


# --- workflow and activity payloads (kept small: history grows with every step) --------------


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


class RelayAck(BaseModel):
    message_id: str
    status: Literal["queued"] = "queued"
    workflow_id: str


class CancelRequest(BaseModel):
    reason: str = Field(default="cancelled by request", max_length=1000)
