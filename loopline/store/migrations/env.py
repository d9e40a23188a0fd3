"""Alembic environment.

Loopline migrates at start on the connection `loopline.store.database.migrate` hands over. The
`alembic` command (e.g. `alembic revision --autogenerate -m "..."`, from the repository
root) works on the database of LOOPLINE_DATABASE_URL instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from loopline.settings import get_settings
from loopline.store.tables import metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run_migrations(given)
else:
    engine = create_engine(get_settings().database_url)
    with engine.connect() as connection:
        run_migrations(connection)
    engine.dispose()
