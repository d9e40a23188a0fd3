"""Provider keys sent with a run are used, and never land in clear text anywhere we write:
Temporal's database, the trace store, the logs (at DEBUG) or API responses."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from tests.harness import (
    Stack,
    answer_step,
    dev_server,
    free_port,
    model_body,
    run_body,
    run_to_end,
    serving,
    wait_for_run,
)
from tests.upstream import Failure, Reply, Upstream

PERU = {"country": "Peru"}
ENV_KEY = "sk-from-the-workers-environment"


@pytest.fixture
async def file_backed(tmp_path: Path, upstream: Upstream) -> AsyncIterator[tuple[Stack, Path]]:
    """A dev server that keeps its database in a file, and a stack logging at DEBUG."""
    temporal_db = tmp_path / "temporal.db"
    server = await dev_server(
        dev_server_database_filename=str(temporal_db),
    )
    address = server.client.service_client.config.target_host
    stack = Stack(temporal_address=address, workdir=tmp_path, log_level="DEBUG")
    stack.extra_env = {"OPENAI_API_KEY": ENV_KEY, "OPENAI_BASE_URL": upstream.openai_url}
    stack.start_worker()
    await stack.start_api()
    try:
        yield stack, tmp_path
    finally:
        stack.stop()
        await server.shutdown()


async def test_keys_are_used_but_never_written_in_clear(
    file_backed: tuple[Stack, Path], upstream: Upstream
) -> None:
    stack, folder = file_backed
    marker = f"sk-marker-{uuid.uuid4().hex}"
    agent = f"gpt-4o-{uuid.uuid4().hex[:8]}"
    user = f"claude-haiku-4-5-{uuid.uuid4().hex[:8]}"
    rejected = f"gpt-4o-{uuid.uuid4().hex[:8]}"
    upstream.plan(agent, Reply(tool_calls=[("lookup", '{"topic": "Peru"}')]), Reply(text="Lima."))
    upstream.plan(user, Reply(text="Thanks! ###STOP###"))
    # A provider that echoes the key in its error, as some do.
    upstream.plan(rejected, Failure(401, f"Incorrect API key provided: {marker}"))

    responses: list[httpx.Response] = []
    async with stack.client() as api:

        async def post(body: dict[str, Any]) -> httpx.Response:
            response = await api.post("/v1/runs", json=body)
            responses.append(response)
            return response

        config = {"model": agent, "provider": "custom", "base_url": upstream.openai_url}
        user_config = {"model": user, "provider": "anthropic", "base_url": upstream.anthropic_url}
        used = await post(
            model_body(
                {**config, "api_key": marker},
                PERU,
                user_model=user_config,
                provider_api_keys={"anthropic": marker},
            )
        )
        failed = await post(model_body({**config, "model": rejected, "api_key": marker}, PERU))
        invalid = await post(model_body({**config, "api_key": marker, "temperature": 9}, PERU))
        assert invalid.status_code == 422

        ended = [await wait_for_run(api, r.json()["run_id"]) for r in (used, failed)]
        assert ended[0]["status"] == "completed" and ended[0]["stop_reason"] == "user_done"
        assert ended[1]["status"] == "failed" and "[redacted]" in ended[1]["error"]
        for run in ended:
            responses.append(
                await api.get(f"/v1/runs/{run['run_id']}", params={"include_trajectory": True})
            )
        responses.append(await api.get("/v1/runs"))

    # The key did reach the providers...
    assert upstream.requests[agent][0].headers["authorization"] == f"Bearer {marker}"
    user_request = upstream.requests[user][0].headers
    assert marker in user_request.get("x-api-key", "") + user_request.get("authorization", "")
    # ...and nothing Loopline wrote or answered holds it.
    stack.stop()
    for response in responses:
        assert marker not in response.text
    written = [p for p in folder.rglob("*") if p.is_file() and p.name != "secret.key"]
    assert {p.name for p in written} >= {"temporal.db", "loopline.db", "worker-0.log", "api.log"}
    for path in written:
        assert marker.encode() not in path.read_bytes(), f"the key is in {path}"
    # The sealed copy is gone once the runs ended.
    with sqlite3.connect(folder / "loopline.db") as db:
        assert db.execute("select count(*) from run_secrets").fetchone() == (0,)


async def test_runs_without_a_key_use_the_workers_own(
    file_backed: tuple[Stack, Path], upstream: Upstream
) -> None:
    stack, _ = file_backed
    model = f"gpt-4o-{uuid.uuid4().hex[:8]}"
    upstream.plan(model, Reply(text="Lima."))
    async with stack.client() as api:
        run = await run_to_end(api, model_body(f"openai/{model}", PERU))

    assert run["status"] == "completed" and run["model"] == f"openai/{model}"
    assert upstream.requests[model][0].headers["authorization"] == f"Bearer {ENV_KEY}"


async def test_a_secret_a_callback_receiver_echoes_is_kept_nowhere(
    file_backed: tuple[Stack, Path],
) -> None:
    """The receiver answers 401 with the headers it was sent: the run records the refusal,
    and neither Temporal, the store, the logs nor the API hold the sealed values."""
    stack, folder = file_backed
    header_secret = f"hdr-{uuid.uuid4().hex}"
    signing_secret = f"sig-{uuid.uuid4().hex}"
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook(request: Request) -> PlainTextResponse:
        echoed = f"refused, you sent {dict(request.headers)}"
        return PlainTextResponse(echoed, status_code=401)

    port = free_port()
    body = run_body(
        "trivia",
        "capital",
        PERU,
        answer_step("Lima"),
        callback={
            "url": f"http://127.0.0.1:{port}/hook",
            "headers": {"Authorization": f"Bearer {header_secret}"},
            "secret": signing_secret,
            "retry_count": 0,
        },
    )
    async with serving(receiver, port), stack.client() as api:
        run = await run_to_end(api, body)
        while (run["callback"] or {}).get("status") != "failed":
            await asyncio.sleep(0.1)
            run = (await api.get(f"/v1/runs/{run['run_id']}")).json()
        answers = [
            await api.get(f"/v1/runs/{run['run_id']}", params={"include_trajectory": True}),
            await api.get(f"/v1/runs/{run['run_id']}/events"),
        ]
    assert run["callback"]["status_code"] == 401
    assert "[redacted]" in run["callback"]["error"]
    stack.stop()
    for answer in answers:
        assert header_secret not in answer.text
    for path in (p for p in folder.rglob("*") if p.is_file() and p.name != "secret.key"):
        content = path.read_bytes()
        assert header_secret.encode() not in content, f"the header is in {path}"
        assert signing_secret.encode() not in content, f"the signing secret is in {path}"
