"""Process settings, read from `LOOPLINE_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from loopline.logs import LogFormat
from loopline.models import HttpUrlText, Provider, RemoteEnvironmentConfig
from loopline.outbound import OutboundPolicy

DEFAULT_ENVIRONMENT_MODULES = ("environments.chat", "environments.orders", "environments.trivia")


class Settings(BaseSettings):
    # Empty variables count as unset: docker-compose.yml passes `${NAME:-}` through.
    model_config = SettingsConfigDict(env_prefix="LOOPLINE_", env_ignore_empty=True)

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_api_key: SecretStr | None = Field(
        default=None, description="Temporal Cloud API key; implies TLS."
    )
    temporal_tls: bool = Field(default=False, description="Connect to Temporal over TLS.")
    temporal_tls_cert_file: str | None = Field(
        default=None, description="Client certificate (PEM) for mTLS, e.g. Temporal Cloud."
    )
    temporal_tls_key_file: str | None = Field(
        default=None, description="Private key (PEM) of temporal_tls_cert_file."
    )
    task_queue: str = "loopline"
    database_url: str = "sqlite:///.loopline/loopline.db"
    sqlite_synchronous: Literal["full", "normal"] = Field(
        default="full",
        description="SQLite's synchronous mode: 'full' (every commit reaches the disk "
        "before it is answered) or 'normal' (commits survive a crash of the process but "
        "the last ones may be lost with the machine's power; faster). Ignored on "
        "PostgreSQL.",
    )
    temporal_ui_url: str | None = Field(
        default=None, description="Base URL of the Temporal UI, used to link runs to it."
    )
    environment_modules: Annotated[list[str], NoDecode] = Field(
        default=list(DEFAULT_ENVIRONMENT_MODULES),
        description="Comma-separated Python modules that define environments; set, it "
        "replaces the built-in ones (LOOPLINE_EXTRA_ENVIRONMENT_MODULES adds to them).",
    )
    extra_environment_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Python modules whose environments are served besides "
        "those of LOOPLINE_ENVIRONMENT_MODULES (the built-in ones, unless it is set).",
    )
    remote_environments: list[RemoteEnvironmentConfig] = Field(
        default_factory=list,
        description="Environments served by MCP servers or HTTP tool servers, as a JSON list "
        '(README: remote environments): [{"name": "shop", "transport": "mcp-http", '
        '"url": "http://shop:8000/mcp"}]. The API and every worker need the same list.',
    )
    relay_webhooks: dict[str, str] = Field(
        default_factory=dict,
        description="Per project, the URL a run's relay_message is POSTed to (a Slack "
        'bridge), as JSON: {"default": "https://relay.example/hook"}. The API and the '
        "workers need the same map.",
    )
    outbound_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts (names, *.wildcards) and networks (CIDRs) Loopline's own requests "
        "may reach although the outbound URL policy would deny them, comma-separated.",
    )
    outbound_deny: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts and networks Loopline's own requests never reach, comma-separated; "
        "a deny entry wins over an allow entry.",
    )
    outbound_local: bool = Field(
        default=False,
        description="Allow loopback and private addresses (one user on one machine); "
        "`loopline up` sets it. Link-local addresses stay denied.",
    )
    log_level: str = "INFO"
    metrics_address: str | None = Field(
        default=None,
        description="host:port where this process serves Prometheus metrics at /metrics; "
        "unset: no metrics endpoint.",
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint (http://collector:4318/v1/traces); unset: no "
        "tracing. Needs the otel extra.",
    )
    log_format: LogFormat | None = Field(
        default=None,
        description="json: one object per line with run_id and workflow_id; text: for people. "
        "Unset: json for `loopline worker` and `loopline api`, text for the other commands.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts per-run provider keys in the trace store; "
        "the API and every worker need the same one. Unset: read from (or created at) "
        "secret_key_file.",
    )
    secret_key_file: str = ".loopline/secret.key"
    prices_file: str | None = Field(
        default=None,
        description="JSON file of model prices (USD per million tokens) that extends and "
        'overrides the built-in table: {"my-model": {"input": 0.5, "output": 1.5}}.',
    )

    session_history_limit: int = Field(
        default=10_000,
        ge=50,
        description="History events after which an idle session continues as new.",
    )
    sse_keepalive_seconds: float = Field(default=15.0, gt=0)
    event_poll_seconds: float = Field(
        default=0.05, gt=0, description="How often live event streams look for new events."
    )
    blob_store: Literal["local", "s3"] = "local"
    blob_dir: str = Field(default=".loopline/blobs", description="Artifacts, when local.")
    s3_bucket: str | None = None
    s3_prefix: str = "loopline/"
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible server (MinIO, R2, ...); unset: AWS."
    )
    s3_region: str | None = None
    max_artifact_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    max_active_runs: int = Field(
        default=1000,
        ge=0,
        description="Runs of a project pending or running at once, batches' runs aside (a "
        "batch has max_parallel); a start beyond them is a 429 with Retry-After. 0: no "
        "limit. The API's.",
    )
    max_request_bytes: int = Field(
        default=16 * 1024 * 1024,
        gt=0,
        description="The largest request body (413 beyond); artifact uploads have their own.",
    )
    default_model: str | None = Field(
        default=None,
        description="'provider/model' of a task run (task-runs API) started without a model "
        "whose task names none (agent_config.model); unset: such a run is refused. The API's.",
    )
    openai_base_url: HttpUrlText | None = Field(
        default=None,
        description="Where openai models without a base_url of their own are called; unset: "
        "OPENAI_BASE_URL, else api.openai.com. The workers'.",
    )
    anthropic_base_url: HttpUrlText | None = Field(
        default=None,
        description="Where anthropic models without a base_url of their own are called; "
        "unset: ANTHROPIC_BASE_URL, else api.anthropic.com. The workers'.",
    )
    provider_rate_limits: dict[Provider, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description="Model calls per second per provider, across all runs and workers, as "
        'JSON: {"openai": 5, "anthropic": 2}. Unset providers are not limited.',
    )

    @model_validator(mode="after")
    def _client_certificate_pairs(self) -> Settings:
        if bool(self.temporal_tls_cert_file) != bool(self.temporal_tls_key_file):
            raise ValueError(
                "set both LOOPLINE_TEMPORAL_TLS_CERT_FILE and LOOPLINE_TEMPORAL_TLS_KEY_FILE "
                "(a client certificate and its private key), or neither"
            )
        return self

    @field_validator(
        "environment_modules",
        "extra_environment_modules",
        "outbound_allow",
        "outbound_deny",
        mode="before",
    )
    @classmethod
    def _split_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    def served_environment_modules(self) -> list[str]:
        """The modules whose environments this process serves, each once, in order."""
        return list(dict.fromkeys([*self.environment_modules, *self.extra_environment_modules]))


def outbound_policy(settings: Settings) -> OutboundPolicy:
    return OutboundPolicy.of(
        settings.outbound_allow, settings.outbound_deny, local=settings.outbound_local
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
