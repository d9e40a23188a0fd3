"""API keys, and the project that owns each run, batch and taskset.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# 0002 declared tasksets.name unique without naming the constraint; this convention gives
# SQLite's reflected copy a name that batch mode can drop.
UNNAMED = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _project() -> sa.Column[str]:
    return sa.Column("project", sa.String(64), nullable=False, server_default="default")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_api_keys_project", "api_keys", ["project"])
    for table in ("runs", "batches"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(_project())
            batch.create_index(f"ix_{table}_project", ["project"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    old_unique = "uq_tasksets_name" if sqlite else "tasksets_name_key"
    with op.batch_alter_table("tasksets", naming_convention=UNNAMED) as tasksets:
        tasksets.add_column(_project())
        tasksets.drop_constraint(old_unique, type_="unique")
        tasksets.create_unique_constraint("uq_tasksets_project_name", ["project", "name"])


def downgrade() -> None:
    with op.batch_alter_table("tasksets") as tasksets:
        tasksets.drop_constraint("uq_tasksets_project_name", type_="unique")
        tasksets.create_unique_constraint("tasksets_name_key", ["name"])
        tasksets.drop_column("project")
    for table in ("runs", "batches"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_project")
            batch.drop_column("project")
    op.drop_table("api_keys")
