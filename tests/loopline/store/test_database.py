"""The SQLite connections of the trace store: durable commits unless a setting says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from loopline.store.database import Database, SqliteSynchronous

# SQLite's codes for PRAGMA synchronous.
NORMAL, FULL = 1, 2


@pytest.mark.parametrize(("setting", "code"), [(None, FULL), ("full", FULL), ("normal", NORMAL)])
async def test_every_connection_syncs_as_the_setting_says(
    tmp_path: Path, setting: SqliteSynchronous | None, code: int
) -> None:
    url = f"sqlite:///{tmp_path / 'trace.db'}"
    database = Database(url) if setting is None else Database(url, setting)
    try:
        await database.create_schema()
        for engine in (database.reader, database.writer):
            with engine.connect() as conn:
                assert conn.scalar(text("PRAGMA synchronous")) == code
                assert conn.scalar(text("PRAGMA journal_mode")) == "wal"
    finally:
        await database.close()
