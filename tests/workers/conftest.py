"""Fixtures of the tests that start and kill worker processes themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import Stack


@pytest.fixture
async def private_stack(temporal_address: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """An API on its own task queue and no worker: the test starts (and kills) them, and no
    other worker can pick its runs up."""
    stack = Stack(temporal_address=temporal_address, workdir=tmp_path)
    await stack.start_api()
    yield stack
    stack.stop()
