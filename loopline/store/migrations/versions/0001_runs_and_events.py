"""Runs, their events, sealed keys, artifacts and environment state (the schema that
`create_all` made before migrations existed).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _run_id_key() -> sa.Column[str]:
    return sa.Column(
        "run_id",
        sa.String(64),
        sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("identity_hash", sa.String(64), nullable=False),
        sa.Column("environment", sa.String(200), nullable=False),
        sa.Column("scenario", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("steps", sa.Integer, nullable=False),
        sa.Column("stop_reason", sa.String(20)),
        sa.Column("reward", sa.Float),
        sa.Column("reward_details", sa.JSON),
        sa.Column("answer", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("model_calls", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("reasoning_tokens", sa.Integer, nullable=False),
        sa.Column("prompt_cost", sa.Float, nullable=False),
        sa.Column("output_cost", sa.Float, nullable=False),
        sa.Column("unpriced_calls", sa.Integer, nullable=False),
        sa.Column("torn_down", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("pending_tool_calls", sa.JSON),
        sa.Column("stage", sa.String(200)),
        sa.Column("branch", sa.String(200)),
        sa.Column("output", sa.JSON),
        sa.Column("client_state", sa.JSON),
        sa.Column("error_message", sa.Text),
    )
    for column in ("environment", "scenario", "status", "created_at"):
        op.create_index(f"ix_runs_{column}", "runs", [column])
    op.create_table(
        "events",
        _run_id_key(),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "key", name="uq_events_run_key"),
    )
    op.create_table("run_secrets", _run_id_key(), sa.Column("sealed", sa.Text, nullable=False))
    op.create_table(
        "artifacts",
        _run_id_key(),
        sa.Column("name", sa.String(1000), primary_key=True),
        sa.Column("storage_path", sa.String(1200), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table("env_states", _run_id_key(), sa.Column("state", sa.JSON))


def downgrade() -> None:
    for table in ("env_states", "artifacts", "run_secrets", "events", "runs"):
        op.drop_table(table)
