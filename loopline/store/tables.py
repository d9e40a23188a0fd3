"""The trace store's schema: every table, in one place."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    UniqueConstraint,
)

from loopline.models import DEFAULT_PROJECT
from loopline.store.columns import NulSafeString, NulSafeText

metadata = MetaData()

# The runs columns that add up to a Usage.
USAGE_COLUMNS = (
    "model_calls",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "prompt_cost",
    "output_cost",
    "unpriced_calls",
    "unreported_calls",
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", NulSafeString(64), primary_key=True),
    Column("identity_hash", NulSafeString(64), nullable=False),
    Column("environment", NulSafeString(200), nullable=False, index=True),
    Column("scenario", NulSafeString(200), nullable=False, index=True),
    Column("model", NulSafeString(200), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("status", NulSafeString(20), nullable=False, index=True),
    Column("steps", Integer, nullable=False, default=0),
    Column("stop_reason", NulSafeString(20)),
    Column("reward", Float),
    Column("reward_details", JSON),
    Column("answer", NulSafeText),
    Column("error", NulSafeText),
    Column("model_calls", Integer, nullable=False, default=0),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("reasoning_tokens", Integer, nullable=False, default=0),
    Column("prompt_cost", Float, nullable=False, default=0.0),
    Column("output_cost", Float, nullable=False, default=0.0),
    Column("unpriced_calls", Integer, nullable=False, default=0),
    Column("unreported_calls", Integer, nullable=False, default=0, server_default="0"),
    Column("torn_down", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("ended_at", DateTime(timezone=True)),
    Column("pending_tool_calls", JSON),
    # Set by the caller (PATCH, set_output), never by the workflow.
    Column("stage", NulSafeString(200)),
    Column("branch", NulSafeString(200)),
    Column("output", JSON),
    Column("client_state", JSON),
    Column("error_message", NulSafeText),
    # What the workflow is started with (no secrets): a batch starts its runs from it.
    Column("run_input", JSON),
    Column("success", Boolean),
    Column("evaluations", JSON),
    Column("callback", JSON),
    Column("batch_id", NulSafeString(64), index=True),
    Column("batch_index", Integer),
    Column("task", NulSafeString(128)),
    Column(
        "project", NulSafeString(64), nullable=False, server_default=DEFAULT_PROJECT, index=True
    ),
    # Which row this is of those that have had its id (a deleted run's id may come again).
    Column("incarnation", NulSafeString(32)),
    Index("ix_runs_status_created", "status", "created_at"),
)

events = Table(
    "events",
    metadata,
    Column(
        "run_id", NulSafeString(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("seq", Integer, primary_key=True),
    Column("key", NulSafeString(200), nullable=False),
    Column("type", NulSafeString(20), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "key", name="uq_events_run_key"),
)

# Provider keys sent with a run, sealed by loopline.secrets; deleted at teardown.
run_secrets = Table(
    "run_secrets",
    metadata,
    Column(
        "run_id", NulSafeString(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("sealed", NulSafeText, nullable=False),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column(
        "run_id", NulSafeString(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("name", NulSafeString(1000), primary_key=True),
    Column("storage_path", NulSafeString(1200), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", NulSafeString(64), nullable=False),
    Column("content_type", NulSafeString(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

env_states = Table(
    "env_states",
    metadata,
    Column(
        "run_id", NulSafeString(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    ),
    # The state at `base_version`, as JSON text; the patches after it make `version`.
    Column("state", JSON),
    # 1 for the first state written, one more at each write: a worker's cached copy of the
    # state is used only while its version is the stored one.
    Column("version", Integer, nullable=False, server_default="1"),
    Column("base_version", Integer, nullable=False, server_default="1"),
)

# A write of a state that changed it little: the text of version - 1 with `removed`
# characters at `at` replaced by `inserted` is the state's JSON text at `version`.
env_state_patches = Table(
    "env_state_patches",
    metadata,
    Column(
        "run_id", NulSafeString(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("version", Integer, primary_key=True),
    Column("at", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
    Column("inserted", NulSafeText, nullable=False),
)


# Callback headers and signing secret, sealed like provider keys; deleted once delivered.
callback_secrets = Table(
    "callback_secrets",
    metadata,
    Column(
        "run_id", NulSafeString(64), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("sealed", NulSafeText, nullable=False),
)

tasksets = Table(
    "tasksets",
    metadata,
    Column("taskset_id", NulSafeString(64), primary_key=True),
    Column("name", NulSafeString(128), nullable=False),
    Column("description", NulSafeText),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("project", NulSafeString(64), nullable=False, server_default=DEFAULT_PROJECT),
    UniqueConstraint("project", "name", name="uq_tasksets_project_name"),
)

tasks = Table(
    "tasks",
    metadata,
    Column(
        "taskset_id",
        NulSafeString(64),
        ForeignKey("tasksets.taskset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("slug", NulSafeString(128), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("definition", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", NulSafeString(64), primary_key=True),
    Column("kind", NulSafeString(10), nullable=False),
    Column("identity_hash", NulSafeString(64)),
    Column("name", NulSafeString(200)),
    Column("status", NulSafeString(20), nullable=False, index=True),
    Column("taskset_id", NulSafeString(64), index=True),
    Column("model", NulSafeString(200)),
    Column("rollout_count", Integer, nullable=False),
    Column("max_parallel", Integer),
    Column("total", Integer, nullable=False),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("metadata", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("ended_at", DateTime(timezone=True)),
    Column(
        "project", NulSafeString(64), nullable=False, server_default=DEFAULT_PROJECT, index=True
    ),
    # Which API started it: "api", or a dialect ("rl-gym", ...); the rl-gym listing filters on it.
    Column("source", NulSafeString(40), nullable=False, server_default="api", index=True),
    Column("incarnation", NulSafeString(32)),
)

# API keys: only a SHA-256 of the secret part is kept; the key itself is shown once.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", NulSafeString(32), primary_key=True),
    Column("secret_hash", NulSafeString(64), nullable=False),
    Column("name", NulSafeString(200), nullable=False),
    Column("project", NulSafeString(64), nullable=False, index=True),
    Column("scopes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

# Agents of the call-agent API: a version is an agent's config, named by its content hash.
agent_versions = Table(
    "agent_versions",
    metadata,
    Column("version_id", NulSafeString(64), primary_key=True),
    Column("agent_id", NulSafeString(64), nullable=False, index=True),
    Column("project", NulSafeString(64), nullable=False),
    Column("path", NulSafeString(500), nullable=False),
    Column("config", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Which version of an agent a named environment ("production", "staging") points at.
agent_deployments = Table(
    "agent_deployments",
    metadata,
    Column("agent_id", NulSafeString(64), primary_key=True),
    Column("environment", NulSafeString(200), primary_key=True),
    Column("version_id", NulSafeString(64), nullable=False),
    Column("deployed_at", DateTime(timezone=True), nullable=False),
)
