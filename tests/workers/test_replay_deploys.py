"""Replay as a regression test of a deploy: a batch recorded on one version of an
environment, replayed after workers with a changed tool and evaluation took over."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.api.test_batches import batch_runs, wait_for_batch
from tests.harness import Stack, answer_step, tool_step

MODULES = "LOOPLINE_ENVIRONMENT_MODULES"
TASKS = [
    {  # version 2 rounds each entry down to 2 and wants 5.8: the reward drops
        "slug": "two-entries",
        "scenario": "reach",
        "args": {"target": 4.8},
        "env": {"name": "ledger"},
        "script": {
            "steps": [
                tool_step("add_entry", amount=2.4),
                tool_step("add_entry", amount=2.4),
                answer_step("done"),
            ]
        },
    },
    {  # rounded to 3, still enough: only the tool result and the state change
        "slug": "one-entry",
        "scenario": "reach",
        "args": {"target": 1},
        "env": {"name": "ledger"},
        "script": {"steps": [tool_step("add_entry", amount=3.2), answer_step("done")]},
    },
]


async def test_a_replay_after_a_deploy_reports_what_the_new_code_changed(
    temporal_address: str, tmp_path: Path
) -> None:
    stack = Stack(
        temporal_address=temporal_address,
        workdir=tmp_path,
        extra_env={MODULES: "tests.servers.ledger_v1"},
    )
    stack.start_worker()
    await stack.start_api()
    try:
        async with stack.client() as api:
            started = await api.post("/v1/batches", json={"tasks": TASKS, "model": "scripted"})
            assert started.status_code == 201, started.text
            batch_id = started.json()["batch_id"]
            assert (await wait_for_batch(api, batch_id))["scores"]["mean_reward"] == 1.0
            runs = {run["task"]: run for run in await batch_runs(api, batch_id)}

            stack.workers[0].terminate()
            stack.workers[0].wait(timeout=30)
            stack.start_worker(**{MODULES: "tests.servers.ledger_v2"})

            table = await asyncio.to_thread(replay_batch, stack, batch_id)
            parent = runs["two-entries"]
            response = await api.post(f"/v1/runs/{parent['run_id']}/replay", json={})
            assert response.status_code == 201, response.text
            report: dict[str, Any] = response.json()["report"]
    finally:
        stack.stop()

    assert table.returncode == 1, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["run", "replay", "recorded", "replayed"]
    assert lines[1].split()[0] == parent["run_id"] and lines[1].split()[2:] == ["1.0", "0.0"]
    assert lines[-1] == "1 of 2 rewards changed; 1 more runs changed with the same reward"

    assert report["same"] is False and report["compared_steps"] == 3
    assert report["reward"] == {"recorded": 1.0, "replayed": 0.0}
    assert report["evaluations"] == {"scenario": {"recorded": 1.0, "replayed": 0.0}}
    results = [(t["step"], t["recorded"], t["replayed"]) for t in report["tools"]]
    assert (1, "total 2.4", "total 2") in results and (2, "total 4.8", "total 4") in results
    assert {change["path"] for change in report["state"]} == {"/entries/0", "/entries/1"}


def replay_batch(stack: Stack, batch_id: str) -> subprocess.CompletedProcess[str]:
    command = ["replay", "--batch", batch_id, "--api-url", stack.api_url]
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *command, "--api-key", stack.api_key],
        capture_output=True,
        text=True,
        timeout=300,
        env=stack.environ(),
    )
