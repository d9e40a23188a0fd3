"""Tasksets, batches, evaluations and callbacks.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RUN_COLUMNS = (
    sa.Column("run_input", sa.JSON),
    sa.Column("success", sa.Boolean),
    sa.Column("evaluations", sa.JSON),
    sa.Column("callback", sa.JSON),
    sa.Column("batch_id", sa.String(64)),
    sa.Column("batch_index", sa.Integer),
    sa.Column("task", sa.String(128)),
)


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        for column in RUN_COLUMNS:
            runs.add_column(column)
        runs.create_index("ix_runs_batch_id", ["batch_id"])
    op.create_table(
        "callback_secrets",
        sa.Column(
            "run_id",
            sa.String(64),
            sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("sealed", sa.Text, nullable=False),
    )
    op.create_table(
        "tasksets",
        sa.Column("taskset_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column(
            "taskset_id",
            sa.String(64),
            sa.ForeignKey("tasksets.taskset_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("slug", sa.String(128), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("identity_hash", sa.String(64)),
        sa.Column("name", sa.String(200)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("taskset_id", sa.String(64)),
        sa.Column("model", sa.String(200)),
        sa.Column("rollout_count", sa.Integer, nullable=False),
        sa.Column("max_parallel", sa.Integer),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )
    for name in ("status", "taskset_id", "created_at"):
        op.create_index(f"ix_batches_{name}", "batches", [name])


def downgrade() -> None:
    for table in ("batches", "tasks", "tasksets", "callback_secrets"):
        op.drop_table(table)
    with op.batch_alter_table("runs") as runs:
        runs.drop_index("ix_runs_batch_id")
        for column in RUN_COLUMNS:
            runs.drop_column(column.name)
