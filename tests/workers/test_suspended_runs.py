"""A run suspended on a client-side tool survives its worker and its Temporal server; so
does a batch in the middle of its runs."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.test_batches import CAPITAL_TASKS, batch_runs, wait_for_batch
from tests.api.test_client_tools import client_tool_body
from tests.harness import (
    Stack,
    answer_step,
    free_port,
    persistent_dev_server,
    tool_step,
    wait_for_run,
)


async def suspend(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.post("/v1/runs", json=client_tool_body())
    assert response.status_code == 201, response.text
    return await wait_for_run(api, response.json()["run_id"], until={"awaiting_input"})


async def resume_to_the_end(api: httpx.AsyncClient, run: dict[str, Any]) -> dict[str, Any]:
    [call] = run["pending_tool_calls"]
    results = {"tool_results": [{"call_id": call["id"], "content": "Nairobi"}]}
    response = await api.post(f"/v1/runs/{run['run_id']}/continue", json=results)
    assert response.status_code == 200, response.text
    return await wait_for_run(api, run["run_id"], within=60)


async def test_suspended_run_resumes_on_a_new_worker(private_stack: Stack) -> None:
    async with private_stack.client(timeout=60) as api:
        first = private_stack.start_worker()
        run = await suspend(api)
        first.send_signal(signal.SIGKILL)
        first.wait()
        private_stack.start_worker()
        done = await resume_to_the_end(api, run)
    assert (done["status"], done["reward"]) == ("completed", 1.0)


async def test_suspended_run_resumes_after_temporal_restarts(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "temporal.db"
    server = await persistent_dev_server(database, port)
    stack = Stack(temporal_address=f"127.0.0.1:{port}", workdir=tmp_path)
    try:
        stack.start_worker()
        await stack.start_api()
        async with stack.client(timeout=60) as api:
            run = await suspend(api)
            await server.shutdown()
            server = await persistent_dev_server(database, port)
            done = await resume_to_the_end(api, run)
        assert (done["status"], done["reward"]) == ("completed", 1.0)
    finally:
        stack.stop()
        await server.shutdown()


async def test_a_batch_finishes_every_run_across_a_temporal_restart(tmp_path: Path) -> None:
    port = free_port()
    database = tmp_path / "temporal.db"
    server = await persistent_dev_server(database, port)
    stack = Stack(temporal_address=f"127.0.0.1:{port}", workdir=tmp_path)
    body = {
        "tasks": CAPITAL_TASKS,
        "rollout_count": 4,
        "max_parallel": 3,
        "script": {"steps": [tool_step("lookup", 0.3, topic="france"), answer_step("Paris")]},
    }
    try:
        stack.start_worker()
        await stack.start_api()
        async with stack.client(timeout=60) as api:
            batch_id = (await api.post("/v1/batches", json=body)).json()["batch_id"]
            deadline = time.monotonic() + 60
            while (counts := (await api.get(f"/v1/batches/{batch_id}")).json()["counts"])[
                "completed"
            ] < 3:
                assert time.monotonic() < deadline, counts
                await asyncio.sleep(0.1)
            assert counts["completed"] < 12, "the batch ended before the restart"
            await server.shutdown()
            server = await persistent_dev_server(database, port)
            batch = await wait_for_batch(api, batch_id, within=180)
            runs = await batch_runs(api, batch_id)
    finally:
        stack.stop()
        await server.shutdown()
    assert batch["status"] == "completed" and batch["counts"]["completed"] == 12
    for run in runs:
        assert run["torn_down"] and run["steps"] == 2
        assert run["reward"] == (1.0 if run["task"] == "France" else 0.0)
