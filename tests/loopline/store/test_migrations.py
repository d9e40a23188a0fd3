"""Migrations build exactly the schema the code uses, adopt databases made before them,
and tolerate the API and workers starting at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from loopline.models import RunSpec
from loopline.store import open_stores
from loopline.store.database import Database, migrate
from loopline.store.tables import metadata
from loopline.store.trace import RunFilter
from tests.loopline.store.test_trace import scratch_postgres_database

OLD_SPEC = RunSpec(environment="trivia", scenario="capital", args={}, model="scripted", max_steps=5)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            yield f"sqlite:///{tmp_path / 'trace.db'}"
        else:
            yield stack.enter_context(scratch_postgres_database())


async def test_the_migrated_schema_is_the_one_the_code_uses(database_url: str) -> None:
    database = Database(database_url)
    try:
        # API and worker starting together both migrate.
        await asyncio.gather(database.create_schema(), database.create_schema())
        with database.writer.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        await database.close()
    assert differences == []


async def test_a_database_made_before_migrations_is_adopted_and_upgraded(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    config = Config()
    config.set_main_option("script_location", "loopline.store:migrations")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        # What `create_all` left before migrations: the tables, no version table.
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(
            text(
                "INSERT INTO runs (run_id, identity_hash, environment, scenario, model, spec, "
                "status, steps, model_calls, prompt_tokens, completion_tokens, "
                "reasoning_tokens, prompt_cost, output_cost, unpriced_calls, torn_down, "
                "created_at) VALUES ('old', 'h', 'trivia', 'capital', 'scripted', :spec, "
                "'completed', 2, 1, 0, 0, 0, 0, 0, 0, TRUE, CURRENT_TIMESTAMP)"
            ),
            {"spec": OLD_SPEC.model_dump_json()},
        )
        conn.execute(text("INSERT INTO env_states (run_id, state) VALUES ('old', '{\"n\": 1}')"))
    engine.dispose()

    async with open_stores(database_url) as stores:
        run = await stores.runs.get_run("old")
        total, listed = await stores.runs.list_runs(RunFilter(), limit=10, offset=0)

    assert (run.status, run.steps, run.batch_id, run.evaluations) == ("completed", 2, None, None)
    assert total == 1 and listed[0].run_id == "old"
    engine = create_engine(database_url)
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(config).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        assert conn.execute(text("SELECT project FROM runs")).scalar() == "default"
        # A state written before versions is at the first one.
        assert conn.execute(text("SELECT version FROM env_states")).scalar() == 1
    engine.dispose()
    engine = create_engine(database_url)
    migrate(engine)  # again: nothing to do, no error
    engine.dispose()
