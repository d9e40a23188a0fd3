"""Versions of environment states, and their changes as patches: each write of a state adds
one to its version, so that a worker may keep the validated state it last saw and reuse it
while the stored version is the same, and a small change is stored as a patch of the JSON
text instead of the whole state again.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("env_states") as env_states:
        env_states.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
        env_states.add_column(
            sa.Column("base_version", sa.Integer, nullable=False, server_default="1")
        )
    op.create_table(
        "env_state_patches",
        sa.Column(
            "run_id",
            sa.String(64),
            sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("at", sa.Integer, nullable=False),
        sa.Column("removed", sa.Integer, nullable=False),
        sa.Column("inserted", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("env_state_patches")
    with op.batch_alter_table("env_states") as env_states:
        env_states.drop_column("base_version")
        env_states.drop_column("version")
