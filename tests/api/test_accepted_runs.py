"""Accepted means durable: every run the store holds gets its workflow or ends failed with a
reason, whatever stops in between (an API killed mid-burst, a Temporal outage); the id of a
deleted run starts a real new run."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopline.models import Scope
from tests.harness import (
    Stack,
    answer_step,
    free_port,
    persistent_dev_server,
    run_body,
    tool_step,
    wait_for_run,
)

BURST = 60
TASK = {"scenario": "capital", "args": {"country": "Japan"}, "env": {"name": "trivia"}}
QUICK_SCRIPT = {"steps": [answer_step("Tokyo")]}
QUICK = run_body("trivia", "capital", {"country": "Japan"}, answer_step("Tokyo"))
# Slow enough that the runs are still in flight when the API dies.
SLOW = run_body(
    "trivia",
    "capital",
    {"country": "Japan"},
    tool_step("lookup", 1.0, topic="japan"),
    answer_step("Tokyo"),
)


async def post_run(api: httpx.AsyncClient, body: dict[str, Any]) -> int | None:
    """The answer's status, or None when the API died before answering."""
    try:
        return (await api.post("/v1/runs", json=body)).status_code
    except httpx.TransportError:
        return None


async def stored_runs(api: httpx.AsyncClient, prefix: str) -> list[dict[str, Any]]:
    listed = (await api.get("/v1/runs", params={"limit": 200})).json()["runs"]
    return [run for run in listed if run["run_id"].startswith(prefix)]


async def until_every_run_ends(
    api: httpx.AsyncClient, prefix: str, within: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        runs = await stored_runs(api, prefix)
        if all(run["status"] in ("completed", "failed", "cancelled") for run in runs):
            return runs
        unfinished = {run["run_id"]: run["status"] for run in runs if run["status"]}
        assert time.monotonic() < deadline, f"still not ended: {unfinished}"
        await asyncio.sleep(0.5)


async def test_runs_of_a_burst_cut_by_kill_9_of_the_api_all_end_without_a_retry(
    temporal_address: str, tmp_path: Path
) -> None:
    stack = Stack(temporal_address=temporal_address, workdir=tmp_path)
    stack.start_worker()
    await stack.start_api()
    prefix = f"burst-{uuid.uuid4().hex[:6]}-"
    try:
        async with stack.client(timeout=30) as api:
            posts = [
                asyncio.create_task(post_run(api, {**SLOW, "run_id": f"{prefix}{n}"}))
                for n in range(BURST)
            ]
            for answered, post in enumerate(asyncio.as_completed(posts)):
                await post
                if answered == BURST // 6:
                    break
            assert stack.api is not None
            stack.api.send_signal(signal.SIGKILL)
            stack.api.wait()
            answers = await asyncio.gather(*posts)
        await stack.start_api()
        async with stack.client() as api:
            runs = await until_every_run_ends(api, prefix, within=180)
    finally:
        stack.stop()
    accepted = {f"{prefix}{n}" for n, status in enumerate(answers) if status == 201}
    unanswered = answers.count(None)
    assert accepted and unanswered, f"the kill did not land mid-burst: {answers}"
    assert accepted <= {run["run_id"] for run in runs}
    # A row written just before the kill got its workflow from the reconciler.
    assert {run["status"] for run in runs} == {"completed"}, runs
    assert {run["reward"] for run in runs} == {1.0}


async def test_while_temporal_is_down_reads_work_and_starts_are_refused_with_a_503(
    tmp_path: Path,
) -> None:
    port = free_port()
    database = tmp_path / "temporal.db"
    server = await persistent_dev_server(database, port)
    stack = Stack(temporal_address=f"127.0.0.1:{port}", workdir=tmp_path)
    try:
        stack.start_worker()
        await stack.start_api()
        async with stack.client(timeout=120) as api:
            before = (await api.post("/v1/runs", json={**QUICK, "sync": True})).json()
            await server.shutdown()

            refused = await api.post("/v1/runs", json={**QUICK, "run_id": "while-down"})
            read = await api.get(f"/v1/runs/{before['run_id']}")
            listed = await api.get("/v1/runs")

            server = await persistent_dev_server(database, port)
            after = await api.post("/v1/runs", json={**QUICK, "sync": True})
            # A refused start leaves no row, or one the reconciler starts once Temporal is back.
            left = await api.get("/v1/runs/while-down")
            if left.status_code == 200:
                left_run = await wait_for_run(api, "while-down", within=120)
    finally:
        stack.stop()
        await server.shutdown()
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "5"
    assert "Temporal" in refused.json()["detail"] and "try again" in refused.json()["detail"]
    assert read.status_code == 200 and read.json()["status"] == "completed"
    assert listed.status_code == 200 and before["run_id"] in listed.text
    assert after.status_code == 201 and after.json()["status"] == "completed", after.text
    assert left.status_code in (200, 404)
    if left.status_code == 200:
        assert left_run["status"] == "completed"


@pytest.mark.usefixtures("stack")
async def test_the_id_of_a_deleted_run_starts_a_real_new_run(api: httpx.AsyncClient) -> None:
    task = {"slug": "japan", "scenario": "capital", "args": {"country": "Japan"}}
    body = {"tasks": [{**task, "env": {"name": "trivia"}}], "script": {"steps": [answer_step("x")]}}
    created = await api.post("/v1/batches", json=body)
    assert created.status_code == 201, created.text
    batch_id = created.json()["batch_id"]
    [run_id] = await finished_batch_runs(api, batch_id)
    old = (await api.get(f"/v1/runs/{run_id}")).json()
    assert old["reward"] == 0.0
    assert (await api.delete(f"/v1/batches/{batch_id}")).status_code == 200

    again = await api.post("/v1/runs", json={**QUICK, "run_id": run_id, "sync": True})

    assert again.status_code == 201, again.text
    new = again.json()
    assert (new["status"], new["reward"], new["batch_id"]) == ("completed", 1.0, None)
    assert new["created_at"] > old["created_at"]


async def finished_batch_runs(api: httpx.AsyncClient, batch_id: str) -> list[str]:
    deadline = time.monotonic() + 120
    while (batch := (await api.get(f"/v1/batches/{batch_id}")).json())["status"] != "completed":
        assert time.monotonic() < deadline, batch
        await asyncio.sleep(0.2)
    return list(batch["run_ids"])


async def test_a_project_with_its_runs_in_flight_is_told_to_retry_later(
    temporal_address: str, tmp_path: Path
) -> None:
    # No worker: what is accepted stays in flight.
    stack = Stack(
        temporal_address=temporal_address,
        workdir=tmp_path,
        extra_env={"LOOPLINE_MAX_ACTIVE_RUNS": "2"},
    )
    await stack.start_api()
    try:
        async with stack.client() as api:
            first = {**QUICK, "run_id": f"busy-{uuid.uuid4().hex[:8]}"}
            accepted = [await api.post("/v1/runs", json=body) for body in (first, QUICK)]
            assert [response.status_code for response in accepted] == [201, 201]
            refused = await api.post("/v1/runs", json=QUICK)
            retried = await api.post("/v1/runs", json=first)
            listed = (await api.get("/v1/runs")).json()
            batch = await api.post("/v1/batches", json={"tasks": [TASK], "script": QUICK_SCRIPT})
            other = await stack.create_key("busy-other", Scope.task_write)
            async with stack.client(other) as theirs:
                elsewhere = await theirs.post("/v1/runs", json=QUICK)
    finally:
        stack.stop()
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert "LOOPLINE_MAX_ACTIVE_RUNS" in refused.json()["detail"]
    # What was accepted is still answered, and is not refused again.
    assert retried.status_code == 200 and retried.json()["run_id"] == first["run_id"]
    assert listed["total"] == 2
    # A batch paces its own runs (max_parallel); another project has its own runs in flight.
    assert batch.status_code == 201, batch.text
    assert elsewhere.status_code == 201, elsewhere.text
