"""Incarnations of runs and batches: which row a workflow execution and a connection token
belong to, since an id may be used again once its row is deleted.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("incarnation", sa.String(32)))
        runs.create_index("ix_runs_status_created", ["status", "created_at"])
    with op.batch_alter_table("batches") as batches:
        batches.add_column(sa.Column("incarnation", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batches:
        batches.drop_column("incarnation")
    with op.batch_alter_table("runs") as runs:
        runs.drop_index("ix_runs_status_created")
        runs.drop_column("incarnation")
