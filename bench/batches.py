"""Rollouts per second of a Loopline batch, next to bare Temporal doing the same work.

Loopline: a batch of N one-step scripted rollouts of an in-process environment (setup,
model step, evaluate and teardown, each a local activity) with max_parallel P, through the
real API and a real worker process, timed from POST /v1/batches to the batch's completed
status.

Bare Temporal: a parent workflow that runs N child workflows, at most P at once, each doing
three no-op regular activities and one no-op local activity (what a Loopline rollout did
before its lifecycle became local activities), on an in-process worker.

Then the time the API takes to create (and answer) a batch of the largest size, 20,000
runs, which is cancelled at once.

  python -m bench.batches [--rollouts 200] [--max-parallel 50] [--largest 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

# The workflows below run in the sandbox, like Loopline's; what the bench itself uses passes.
with workflow.unsafe.imports_passed_through():
    import httpx

    from tests.api.test_batches import wait_for_batch
    from tests.harness import Stack, answer_step, dev_server
    from workers.cli.up import DEV_SERVER_TUNING

STEP = timedelta(seconds=30)


@activity.defn
async def nothing(_: int) -> None:
    return None


@workflow.defn
class BareRollout:
    @workflow.run
    async def run(self, index: int) -> None:
        await workflow.execute_activity(nothing, index, start_to_close_timeout=STEP)
        await workflow.execute_local_activity(nothing, index, start_to_close_timeout=STEP)
        await workflow.execute_activity(nothing, index, start_to_close_timeout=STEP)
        await workflow.execute_activity(nothing, index, start_to_close_timeout=STEP)


@workflow.defn
class BareBatch:
    @workflow.run
    async def run(self, total: int, max_parallel: int) -> None:
        active: set[asyncio.Task[None]] = set()
        for index in range(total):
            await workflow.wait_condition(lambda: len(active) < max_parallel)
            child = asyncio.create_task(
                workflow.execute_child_workflow(
                    BareRollout.run, index, id=f"{workflow.info().workflow_id}-{index}"
                )
            )
            active.add(child)
            child.add_done_callback(active.discard)
        await workflow.wait_condition(lambda: not active)


def batch_body(rollouts: int, max_parallel: int) -> dict[str, object]:
    return {
        "tasks": [
            {"scenario": "capital", "args": {"country": "France"}, "env": {"name": "trivia"}}
        ],
        "rollout_count": rollouts,
        "max_parallel": max_parallel,
        "script": {"steps": [answer_step("Paris")]},
    }


async def loopline_batch(api: httpx.AsyncClient, rollouts: int, max_parallel: int) -> float:
    started = time.perf_counter()
    response = await api.post("/v1/batches", json=batch_body(rollouts, max_parallel))
    response.raise_for_status()
    batch = await wait_for_batch(api, response.json()["batch_id"], within=600)
    elapsed = time.perf_counter() - started
    assert batch["counts"]["completed"] == rollouts, batch["counts"]
    return elapsed


async def create_largest(api: httpx.AsyncClient, runs: int) -> float:
    tasks = [
        {"slug": f"t{n}", "scenario": "capital", "args": {"country": "France"},
         "env": {"name": "trivia"}}
        for n in range(runs // 1000)
    ]  # fmt: skip
    body = {"tasks": tasks, "rollout_count": 1000, "script": {"steps": [answer_step("Paris")]}}
    started = time.perf_counter()
    response = await api.post("/v1/batches", json=body)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    batch_id = response.json()["batch_id"]
    (await api.post(f"/v1/batches/{batch_id}/cancel")).raise_for_status()
    await wait_for_batch(api, batch_id, within=600)
    return elapsed


async def bare_batch(client: Client, rollouts: int, max_parallel: int) -> float:
    task_queue = f"bare-{uuid.uuid4().hex[:6]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[BareBatch, BareRollout],
        activities=[nothing],
        max_concurrent_activities=200,
    ):
        started = time.perf_counter()
        await client.execute_workflow(
            BareBatch.run,
            args=[rollouts, max_parallel],
            id=f"bare-batch-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        return time.perf_counter() - started


async def main(rollouts: int, max_parallel: int, largest: int) -> None:
    server = await dev_server(
        dev_server_extra_args=DEV_SERVER_TUNING,
        dev_server_log_level="error",
    )
    address = server.client.service_client.config.target_host
    try:
        with tempfile.TemporaryDirectory() as workdir:
            stack = Stack(temporal_address=address, workdir=Path(workdir), log_level="WARNING")
            stack.start_worker()
            await stack.start_api()
            try:
                async with stack.client(timeout=60) as api:
                    await loopline_batch(api, 10, 10)  # warm-up
                    loopline = await loopline_batch(api, rollouts, max_parallel)
                    creation = await create_largest(api, largest)
            finally:
                stack.stop()
        await bare_batch(server.client, 10, 10)  # warm-up
        bare = await bare_batch(server.client, rollouts, max_parallel)
    finally:
        await server.shutdown()
    print(f"{rollouts} one-step rollouts, max_parallel {max_parallel}, 2 cores:")
    print(f"  Loopline batch (API + worker process): {loopline:.2f} s, {rollouts / loopline:.1f}/s")
    print(f"  bare Temporal, same activities:        {bare:.2f} s, {rollouts / bare:.1f}/s")
    print(f"  Loopline / bare throughput: {bare / loopline:.2f}")
    print(f"POST /v1/batches of {largest} runs answered in {creation:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollouts", type=int, default=200)
    parser.add_argument("--max-parallel", type=int, default=50)
    parser.add_argument("--largest", type=int, default=20_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rollouts, arguments.max_parallel, arguments.largest))
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(0)
