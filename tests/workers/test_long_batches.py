"""A batch whose history grows long continues as new and still runs every rollout once."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from tests.api.test_batches import CAPITAL_TASKS, batch_runs, wait_for_batch
from tests.harness import Stack, answer_step
from workflows.contract.names import batch_workflow_id


async def test_a_long_batch_continues_as_new_without_losing_a_run(
    temporal_address: str, temporal_client: Client, tmp_path: Path
) -> None:
    stack = Stack(
        temporal_address=temporal_address,
        workdir=tmp_path,
        extra_env={"LOOPLINE_SESSION_HISTORY_LIMIT": "50"},
    )
    stack.start_worker()
    await stack.start_api()
    try:
        async with stack.client(timeout=60) as api:
            body = {
                "tasks": CAPITAL_TASKS,
                "rollout_count": 6,
                "max_parallel": 3,
                "script": {"steps": [answer_step("Paris")]},
            }
            created = (await api.post("/v1/batches", json=body)).json()
            batch = await wait_for_batch(api, created["batch_id"])
            runs = await batch_runs(api, created["batch_id"])
    finally:
        stack.stop()

    assert batch["status"] == "completed" and batch["counts"]["completed"] == 18
    assert sorted(run["run_id"] for run in runs) == sorted(created["run_ids"])
    workflow_id = batch_workflow_id(created["batch_id"])
    chain = [
        execution
        async for execution in temporal_client.list_workflows(f"WorkflowId = '{workflow_id}'")
    ]
    assert len(chain) >= 2, "the batch never continued as new"
