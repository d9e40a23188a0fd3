"""Environment code that is slow: CPU-heavy tools do not stall workflow tasks, and a worker
or API stopped with runs in flight exits within 30 s, its runs finishing on the next start."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from tests.harness import (
    Stack,
    answer_step,
    free_port,
    run_body,
    tool_step,
    wait_for_run,
    wait_for_steps,
)
from tests.workers.test_embedded import listening, local_key, read_until, start_up

HEAVY_MODULES = "environments.trivia,tests.servers.heavy_environments"
# Lines the SDK logs when a workflow task overran its timeout or was lost to one.
STALL_MARKERS = ("TMPRL1104", "Workflow task not found", "TMPRL1101")


def heavy_stack(temporal_address: str, workdir: Path) -> Stack:
    return Stack(
        temporal_address=temporal_address,
        workdir=workdir,
        extra_env={"LOOPLINE_ENVIRONMENT_MODULES": HEAVY_MODULES},
    )


async def test_cpu_heavy_tools_in_ten_runs_stall_no_workflow_task(
    temporal_address: str, tmp_path: Path
) -> None:
    stack = heavy_stack(temporal_address, tmp_path)
    stack.start_worker()
    await stack.start_api()
    body = run_body("heavy", "work", {}, tool_step("burn", seconds=2.0), answer_step("done"))
    try:
        async with stack.client() as api:
            started = [await api.post("/v1/runs", json=body) for _ in range(10)]
            run_ids = [response.json()["run_id"] for response in started]
            runs = await asyncio.gather(*(wait_for_run(api, run, within=240) for run in run_ids))
    finally:
        stack.stop()
    assert [run["status"] for run in runs] == ["completed"] * 10, [run["error"] for run in runs]
    assert [run["reward"] for run in runs] == [1.0] * 10
    log = (tmp_path / "worker-0.log").read_text()
    assert not [marker for marker in STALL_MARKERS if marker in log], log[-4000:]


def seconds_to_exit(
    process: subprocess.Popen[bytes] | subprocess.Popen[str], sig: signal.Signals
) -> float:
    began = time.monotonic()
    process.send_signal(sig)
    try:
        process.wait(timeout=60)
    finally:
        process.kill()
    return time.monotonic() - began


async def test_worker_and_api_exit_within_30_s_of_sigterm_and_their_runs_go_on(
    temporal_address: str, tmp_path: Path
) -> None:
    stack = heavy_stack(temporal_address, tmp_path)
    worker = stack.start_worker()
    await stack.start_api()
    # One run blocked in a sync tool for longer than the shutdown deadline, one burning CPU,
    # a live event stream open on the first.
    blocked = run_body("heavy", "work", {}, tool_step("block", seconds=35.0), answer_step("done"))
    burning = run_body("heavy", "work", {}, tool_step("burn", seconds=20.0), answer_step("done"))
    try:
        async with stack.client() as api:
            run_ids = [
                (await api.post("/v1/runs", json=body)).json()["run_id"]
                for body in (blocked, burning)
            ]
            for run_id in run_ids:
                await wait_for_steps(api, run_id, 1, within=60)
            stream = asyncio.create_task(
                api.get(f"/v1/runs/{run_ids[0]}/events", headers={"Accept": "text/event-stream"})
            )
            await asyncio.sleep(1)
            worker_exit = await asyncio.to_thread(seconds_to_exit, worker, signal.SIGTERM)
            assert stack.api is not None
            api_exit = await asyncio.to_thread(seconds_to_exit, stack.api, signal.SIGTERM)
            stream.cancel()
        assert worker_exit < 30 and worker.returncode is not None
        assert api_exit < 30 and stack.api.returncode is not None

        stack.start_worker()
        await stack.start_api()
        async with stack.client() as api:
            runs = [await wait_for_run(api, run_id, within=180) for run_id in run_ids]
    finally:
        stack.stop()
    assert [run["status"] for run in runs] == ["completed", "completed"]


def drain(process: subprocess.Popen[str]) -> None:
    """Read the rest of the output, so that a full pipe never blocks the process."""
    assert process.stdout is not None
    threading.Thread(target=process.stdout.read, daemon=True).start()


def up_api(port: int, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


async def test_up_exits_within_30_s_of_sigterm_with_a_run_in_flight_and_finishes_it_after(
    tmp_path: Path,
) -> None:
    ports = {"api": free_port(), "temporal": free_port(), "ui": free_port()}
    env = {"LOOPLINE_ENVIRONMENT_MODULES": HEAVY_MODULES}
    blocked = run_body("heavy", "work", {}, tool_step("block", seconds=35.0), answer_step("done"))
    first = start_up(tmp_path, ports, env=env)
    try:
        key = local_key(read_until(first, "Ctrl-C stops everything"))
        drain(first)
        async with up_api(ports["api"], key) as api:
            run_id = (await api.post("/v1/runs", json=blocked)).json()["run_id"]
            await wait_for_steps(api, run_id, 1, within=60)
            up_exit = await asyncio.to_thread(seconds_to_exit, first, signal.SIGTERM)
    finally:
        first.kill()
    assert up_exit < 30 and first.returncode is not None
    assert not listening(ports["temporal"]) and not listening(ports["api"])

    second = start_up(tmp_path, ports, env=env)
    try:
        read_until(second, "Ctrl-C stops everything")
        drain(second)
        async with up_api(ports["api"], key) as api:
            run = await wait_for_run(api, run_id, within=180)
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=60)
    assert (run["status"], run["reward"]) == ("completed", 1.0)
