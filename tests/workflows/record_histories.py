"""Record the histories that tests/workflows/test_replay.py replays.

Each one exercises a path of a workflow type: tools and the scripted model (as activities
of their own, recorded before a step became one activity, and in one), a client-side
tool with continue, a session with messages and close, evaluation with a judge and a
callback (setup, evaluation and teardown as regular activities, recorded before they
became local ones, and as local ones), a batch, a cancelled batch. Re-record (and commit)
them only on purpose: the point of the saved ones is that today's code must still replay
what yesterday's recorded.

  python -m tests.workflows.record_histories [NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from tests.api.test_batches import CAPITAL_TASKS, wait_for_batch
from tests.api.test_client_tools import client_tool_body
from tests.harness import Stack, answer_step, dev_server, run_body, tool_step, wait_for_run
from workers.cli.demo import DEMO_RUNS
from workers.cli.up import DEV_SERVER_TUNING
from workflows.contract.names import batch_workflow_id

HISTORIES = Path(__file__).parent / "histories"


async def tools_run(api: httpx.AsyncClient) -> str:
    response = await api.post("/v1/runs", json={**DEMO_RUNS[0], "sync": True, "timeout": 60})
    return str(response.json()["workflow_id"])


async def client_tool_run(api: httpx.AsyncClient) -> str:
    run_id = (await api.post("/v1/runs", json=client_tool_body())).json()["run_id"]
    run = await wait_for_run(api, run_id, until={"awaiting_input"})
    [call] = run["pending_tool_calls"]
    results = {"tool_results": [{"call_id": call["id"], "content": "Nairobi"}]}
    await api.post(f"/v1/runs/{run_id}/continue", json=results)
    return str((await wait_for_run(api, run_id))["workflow_id"])


async def session_run(api: httpx.AsyncClient) -> str:
    body = run_body("trivia", "capital", {"country": "Peru"}, answer_step("Noted."), repeat=True)
    run_id = (await api.post("/v1/runs", json={**body, "session": True})).json()["run_id"]
    await wait_for_run(api, run_id, until={"idle"})
    for n in range(2):
        message = {"message_id": f"m{n}", "content": f"question {n}"}
        await api.post(f"/v1/runs/{run_id}/messages", json=message)
        await wait_for_run(api, run_id, until={"idle"})
    await api.post(f"/v1/runs/{run_id}/close", json={})
    return str((await wait_for_run(api, run_id))["workflow_id"])


async def evaluated_run(api: httpx.AsyncClient) -> str:
    verdict = json.dumps({"score": 1, "passed": True, "reasoning": "right"})
    body = run_body(
        "trivia",
        "capital",
        {"country": "Kenya"},
        tool_step("lookup", topic="kenya"),
        answer_step("Nairobi"),
        evaluation={
            "validation": [{"name": "lookup"}],
            "rubric": "Names the capital.",
            "judge_script": {"steps": [answer_step(verdict)]},
        },
        # Nothing listens there: the delivery fails and is recorded, which is replayed too.
        callback={"url": "http://127.0.0.1:9/hook", "retry_count": 0},
    )
    run_id = (await api.post("/v1/runs", json=body)).json()["run_id"]
    run = await wait_for_run(api, run_id)
    while (run["callback"] or {}).get("status") != "failed":
        await asyncio.sleep(0.2)
        run = (await api.get(f"/v1/runs/{run_id}")).json()
    return str(run["workflow_id"])


async def batch(api: httpx.AsyncClient) -> str:
    body = {
        "tasks": CAPITAL_TASKS,
        "rollout_count": 2,
        "max_parallel": 2,
        "script": {"steps": [answer_step("Paris")]},
    }
    batch_id = (await api.post("/v1/batches", json=body)).json()["batch_id"]
    await wait_for_batch(api, batch_id)
    return batch_workflow_id(batch_id)


async def cancelled_batch(api: httpx.AsyncClient) -> str:
    endless = {"steps": [tool_step("lookup", 0.2, topic="peru")], "repeat": True}
    body = {"tasks": CAPITAL_TASKS, "max_parallel": 2, "script": endless, "max_steps": 500}
    batch_id = (await api.post("/v1/batches", json=body)).json()["batch_id"]
    deadline = time.monotonic() + 60
    while (await api.get(f"/v1/batches/{batch_id}")).json()["counts"]["running"] < 2:
        assert time.monotonic() < deadline, "the batch never had 2 runs going"
        await asyncio.sleep(0.1)
    await api.post(f"/v1/batches/{batch_id}/cancel", json={"reason": "recording"})
    await wait_for_batch(api, batch_id)
    return batch_workflow_id(batch_id)


SCENES = {
    "run_tools": tools_run,
    "run_tools_in_one_activity": tools_run,
    "run_client_tool": client_tool_run,
    "run_session": session_run,
    "run_session_in_one_activity": session_run,
    "run_evaluated_with_callback": evaluated_run,
    "run_local_lifecycle": evaluated_run,
    "batch": batch,
    "batch_cancelled": cancelled_batch,
}


async def save(client: Client, name: str, workflow_id: str) -> None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    document: dict[str, Any] = json.loads(history.to_json())
    path = HISTORIES / f"{name}.json"
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"{path}: {len(document['events'])} events")


async def main(names: list[str]) -> None:
    server = await dev_server(
        dev_server_extra_args=DEV_SERVER_TUNING,
        dev_server_log_level="error",
    )
    HISTORIES.mkdir(exist_ok=True)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            address = server.client.service_client.config.target_host
            stack = Stack(temporal_address=address, workdir=Path(workdir), log_level="WARNING")
            stack.start_worker()
            await stack.start_api()
            try:
                async with stack.client(timeout=60) as api:
                    for name in names:
                        await save(server.client, name, await SCENES[name](api))
            finally:
                stack.stop()
    finally:
        await server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *SCENES], help="default: all")
    asyncio.run(main(parser.parse_args().names or list(SCENES)))
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(0)
