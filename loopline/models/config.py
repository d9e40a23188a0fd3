"""Configuration: which model plays a part and how it is called, remote environments as
operators declare them, and the scopes of API keys."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    WithJsonSchema,
    model_validator,
)

from loopline.models.conversation import MAX_STEPS_LIMIT, TOOL_NAME_PATTERN

# Rows from before projects existed, and everything of a single-team deployment.
DEFAULT_PROJECT = "default"


PROJECT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_HOST = r"([A-Za-z0-9_~%-]+(\.[A-Za-z0-9_~%-]+)*\.?|\[[0-9A-Fa-f:.]+\])"
# An http(s) URL with a host (and a valid port, if any): what the outbound policy can check.
HTTP_URL_PATTERN = rf"^https?://([^\s/?#@]+@)?{_HOST}(:{_PORT})?([/?#]\S*)?$"
MAX_URL_CHARS = 2000


def _http_url(value: str) -> str:
    if re.fullmatch(HTTP_URL_PATTERN, value) is None:
        raise ValueError(
            "not an http(s) URL with a host: write e.g. https://example.com/path "
            "(a port, if given, from 1 to 65535; no spaces)"
        )
    return value


# The pattern is documented; the validator says in words what a refused URL lacks.
HttpUrlText = Annotated[
    str,
    Field(max_length=MAX_URL_CHARS),
    AfterValidator(_http_url),
    WithJsonSchema({"type": "string", "pattern": HTTP_URL_PATTERN, "maxLength": MAX_URL_CHARS}),
]


# Calls to remote environments' servers, unless an environment's config says otherwise.
REMOTE_CALL_TIMEOUT_SECONDS = 60.0


REMOTE_MAX_ATTEMPTS = 5


class Provider(StrEnum):
    scripted = "scripted"
    client = "client"
    custom = "custom"
    openai = "openai"
    anthropic = "anthropic"
    azure_openai = "azure-openai"
    aws_bedrock = "aws-bedrock"
    gcp = "gcp"

    @property
    def speaks_openai(self) -> bool:
        return self in {Provider.custom, Provider.openai, Provider.azure_openai}


# Models named bare, with no provider: the script, and the agent that runs in the caller.
BARE_MODELS = frozenset({Provider.scripted, Provider.client})


class NamedToolChoice(BaseModel):
    """Make the model call this tool."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TOOL_NAME_PATTERN)


ToolChoice = Literal["auto", "required", "none"] | NamedToolChoice
# Repeated identical tool calls after which a run stops (the model is looping), by default.
REPEATED_TOOL_CALLS = 5


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
    base_url: HttpUrlText | None = None
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
    stream: bool = Field(
        default=True,
        description="Stream tokens to live subscribers. A server that cannot stream tool "
        "calls is asked again without streaming, and the step notes it.",
    )
    tool_choice: ToolChoice | None = Field(
        default=None,
        description="auto, required, none or {name}; unset: the provider's default, and "
        "auto for custom servers (llama.cpp offers tools only when it is sent).",
    )
    parallel_tool_calls: bool | None = Field(
        default=None, description="Unset: the provider's default."
    )
    max_repeated_tool_calls: int = Field(
        default=REPEATED_TOOL_CALLS,
        ge=0,
        le=MAX_STEPS_LIMIT,
        description="The run stops (repeated_tool_call) when the model asks for the same "
        "tool calls with the same arguments this many times in a row; 0: never. Scripts "
        "repeat on purpose: the scripted model is never stopped for it.",
    )
    timeout_seconds: float = Field(default=300.0, gt=0, le=3600)
    tool_server_url: HttpUrlText | None = Field(
        default=None,
        description="An HTTP tool server whose tools the agent uses instead of the "
        "environment's own (README: HTTP tool servers). The agent's model only.",
    )

    @property
    def label(self) -> str:
        """How runs show the model: `provider/model`."""
        if self.provider in BARE_MODELS:
            return self.provider.value
        return f"{self.provider.value}/{self.model}"

    def without_secret(self) -> ModelConfig:
        return self.model_copy(update={"api_key": None})


def parse_model(value: str | ModelConfig) -> ModelConfig:
    """`scripted`, `provider/model` or a full config, as one config."""
    if isinstance(value, ModelConfig):
        return value
    if value in BARE_MODELS:
        return ModelConfig(model=value, provider=Provider(value))
    provider, slash, model = value.partition("/")
    known = ", ".join(p.value for p in Provider if p not in BARE_MODELS)
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


class Scope(StrEnum):
    """What an API key may do; `admin` may do everything, including manage its project's keys."""

    task_read = "task:read"
    task_write = "task:write"
    admin = "admin"


class RemoteTransport(StrEnum):
    mcp_http = "mcp-http"
    mcp_stdio = "mcp-stdio"
    http = "http"


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
    url: HttpUrlText | None = Field(
        default=None, description="mcp-http and http: the server's URL."
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
