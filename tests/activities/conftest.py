"""A real trace store for the activity tests, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from loopline.store import TraceStore, open_stores
from tests.loopline.store.test_trace import scratch_postgres_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TraceStore]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{Path(tmp_path_factory.mktemp('state')) / 'trace.db'}"
        else:
            url = stack.enter_context(scratch_postgres_database())
        async with open_stores(url) as opened:
            yield opened.runs
