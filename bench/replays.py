"""What a replay and a fork cost next to the run they come from.

A scripted run of the orders environment with N steps (each one tool call that changes the
shop's state) is started through the real API and worker; then it is replayed (all N steps
from the recording, with the report) and forked at N/2 (N/2 steps from the recording, then
the parent's own script). Each is timed from its POST to its end, and the replay's report
is read once more on its own.

  python -m bench.replays [--steps 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.harness import Stack, answer_step, dev_server, run_body, tool_step, wait_for_run
from workers.cli.up import DEV_SERVER_TUNING


def parent_body(steps: int) -> dict[str, object]:
    calls = [tool_step("open_ticket", order_id="A-1001", subject=f"s{n}") for n in range(steps)]
    body = run_body(
        "orders",
        "refund_damaged",
        {"customer": "ada", "order_id": "A-1001"},
        *calls,
        answer_step("done"),
        max_steps=steps + 1,
    )
    return body


async def timed_run(api: httpx.AsyncClient, steps: int) -> tuple[str, float]:
    started = time.perf_counter()
    response = await api.post("/v1/runs", json=parent_body(steps))
    response.raise_for_status()
    run = await wait_for_run(api, response.json()["run_id"], within=600)
    assert run["status"] == "completed", run
    return run["run_id"], time.perf_counter() - started


async def timed_replay(api: httpx.AsyncClient, run_id: str) -> float:
    started = time.perf_counter()
    response = await api.post(f"/v1/runs/{run_id}/replay", json={"timeout": 600})
    response.raise_for_status()
    report = response.json()["report"]
    assert report is not None and report["same"], report
    return time.perf_counter() - started


async def timed_fork(api: httpx.AsyncClient, run_id: str, step: int) -> float:
    started = time.perf_counter()
    response = await api.post(f"/v1/runs/{run_id}/forks", json={"step": step})
    response.raise_for_status()
    fork = await wait_for_run(api, response.json()["runs"][0]["run_id"], within=600)
    assert fork["status"] == "completed", fork
    return time.perf_counter() - started


async def timed_report(api: httpx.AsyncClient, run_id: str) -> float:
    replay = (await api.post(f"/v1/runs/{run_id}/replay", json={})).json()["run"]["run_id"]
    started = time.perf_counter()
    (await api.get(f"/v1/runs/{replay}/replay-report")).raise_for_status()
    return time.perf_counter() - started


async def measure(api: httpx.AsyncClient, steps: int, repeats: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"run": [], "replay": [], "fork": [], "report": []}
    await timed_run(api, 5)  # warm-up
    for _ in range(repeats):
        run_id, elapsed = await timed_run(api, steps)
        figures["run"].append(elapsed)
        figures["replay"].append(await timed_replay(api, run_id))
        figures["fork"].append(await timed_fork(api, run_id, steps // 2))
        figures["report"].append(await timed_report(api, run_id))
    return figures


async def main(steps: int, repeats: int) -> None:
    server = await dev_server(dev_server_extra_args=DEV_SERVER_TUNING, dev_server_log_level="error")
    address = server.client.service_client.config.target_host
    try:
        with tempfile.TemporaryDirectory() as workdir:
            stack = Stack(temporal_address=address, workdir=Path(workdir), log_level="WARNING")
            stack.start_worker()
            await stack.start_api()
            try:
                async with stack.client(timeout=660) as api:
                    figures = await measure(api, steps, repeats)
            finally:
                stack.stop()
    finally:
        await server.shutdown()
    run = statistics.median(figures["run"])
    print(f"a {steps + 1}-step scripted orders run, medians of {repeats}, 2 cores:")
    print(f"  {'the run:':<36} {run:.2f} s ({run / (steps + 1) * 1000:.1f} ms/step)")
    for name, label in (
        ("replay", f"its replay ({steps + 1} steps), report:"),
        ("fork", f"a fork at step {steps // 2}:"),
    ):
        value = statistics.median(figures[name])
        print(f"  {label:<36} {value:.2f} s ({value / run:.2f}x the run)")
    report = statistics.median(figures["report"]) * 1000
    print(f"  {'a report read on its own:':<36} {report:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.steps, arguments.repeats))
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(0)
