"""Where a batch was started from, and the agents (versions by content hash, deployments)
of the call-agent API.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batches:
        batches.add_column(sa.Column("source", sa.String(40), nullable=False, server_default="api"))
        batches.create_index("ix_batches_source", ["source"])
    op.create_table(
        "agent_versions",
        sa.Column("version_id", sa.String(64), primary_key=True),
        sa.Column("agent_id", sa.String(64), nullable=False, index=True),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "agent_deployments",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("environment", sa.String(200), primary_key=True),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_deployments")
    op.drop_table("agent_versions")
    with op.batch_alter_table("batches") as batches:
        batches.drop_index("ix_batches_source")
        batches.drop_column("source")
