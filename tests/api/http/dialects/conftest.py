"""One stack for the dialect tests: the seed examples' environments, provider SDKs pointed
at the local wire-format server, and an inbox that receives callbacks and relay messages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from tests.harness import Stack, free_port, serving
from tests.upstream import Upstream

SEED_MODULES = "environments.chat,environments.trivia,tests.servers.seed_environments"


@dataclass
class Inbox:
    """What webhooks (callbacks, relay messages) delivered, by path."""

    port: int = field(default_factory=free_port)
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    arrivals: dict[str, asyncio.Event] = field(default_factory=dict)

    async def first(self, name: str, within: float = 30) -> dict[str, Any]:
        """The first delivery to /`name`, once it has arrived."""
        arrived = self.arrivals.setdefault(name, asyncio.Event())
        await asyncio.wait_for(arrived.wait(), within)
        return self.received[name][0]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{name}")
        async def receive(name: str, request: Request) -> dict[str, str]:
            self.received.setdefault(name, []).append(json.loads(await request.body()))
            self.arrivals.setdefault(name, asyncio.Event()).set()
            return {"status": "ok"}

        return app


@pytest.fixture(scope="package")
async def inbox() -> AsyncIterator[Inbox]:
    box = Inbox()
    async with serving(box.app(), box.port):
        yield box


@pytest.fixture(scope="package")
async def dialect_stack(
    temporal_address: str,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: Upstream,
    inbox: Inbox,
) -> AsyncIterator[Stack]:
    stack = Stack(
        temporal_address=temporal_address,
        workdir=tmp_path_factory.mktemp("dialects"),
        extra_env={
            "LOOPLINE_ENVIRONMENT_MODULES": SEED_MODULES,
            "LOOPLINE_RELAY_WEBHOOKS": json.dumps({"default": f"{inbox.url}/relay"}),
        },
    )
    # The API first: it migrates the database the worker then opens.
    await stack.start_api()
    # Models named bare go where Loopline's own settings say, before the SDKs' variables
    # (which point at nothing here).
    stack.start_worker(
        LOOPLINE_OPENAI_BASE_URL=upstream.openai_url,
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        OPENAI_API_KEY="sk-workers-own",
        LOOPLINE_ANTHROPIC_BASE_URL=upstream.anthropic_url,
        ANTHROPIC_BASE_URL="http://127.0.0.1:9",
        ANTHROPIC_API_KEY="sk-ant-workers-own",
    )
    yield stack
    stack.stop()


@pytest.fixture
async def base(dialect_stack: Stack) -> str:
    """The API's address: what a seed's client changes its base URL to."""
    return dialect_stack.api_url


@pytest.fixture
def key(dialect_stack: Stack) -> str:
    return dialect_stack.api_key


@pytest.fixture
async def native(dialect_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with dialect_stack.client() as http:
        yield http
