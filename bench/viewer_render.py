"""How long the viewer takes to render its heaviest pages: a run of 500 steps (each a tool
call, so ~1,000 events) and the page of a batch of 1,000 runs.

A real stack (dev server, worker, API) records both through real workflows, then the bench
asks for each page several times, as a signed-in browser would (the key in a header), and
prints the median and slowest render beside the JSON the API answers for the same data,
with the ratio to the goal of 1 s. One run, on a shared machine: nothing is asserted.

    python -m bench.viewer_render [--steps 500] [--runs 1000] [--repeats 5]
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

from tests.harness import Stack, dev_server, run_body, tool_step, wait_for_run
from workers.cli.up import DEV_SERVER_TUNING

GOAL_SECONDS = 1.0
BATCH_WAIT_SECONDS = 1800.0
ROLLOUTS = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="steps of the long run (≤ 500)")
    parser.add_argument("--runs", type=int, default=1000, help="runs of the batch (tasks of 10)")
    parser.add_argument("--repeats", type=int, default=5, help="renders of each page")
    return parser.parse_args()


async def long_run(http: httpx.AsyncClient, steps: int) -> str:
    body = run_body(
        "trivia",
        "capital",
        {"country": "Kenya"},
        tool_step("lookup", topic="Kenya"),
        repeat=True,
        max_steps=steps,
    )
    response = await http.post("/v1/runs", json=body)
    response.raise_for_status()
    run_id = str(response.json()["run_id"])
    await wait_for_run(http, run_id, within=BATCH_WAIT_SECONDS)
    return run_id


async def big_batch(http: httpx.AsyncClient, runs: int) -> str:
    countries = ["France", "Japan", "Kenya", "Peru"]
    tasks = [
        {
            "slug": f"task-{i}",
            "scenario": "capital",
            "args": {"country": countries[i % len(countries)]},
            "env": {"name": "trivia"},
        }
        for i in range(max(1, runs // ROLLOUTS))
    ]
    body = {
        "tasks": tasks,
        "rollout_count": ROLLOUTS,
        "script": {"steps": [{"content": "Paris"}]},
    }
    response = await http.post("/v1/batches", json=body)
    response.raise_for_status()
    batch_id = str(response.json()["batch_id"])
    deadline = time.monotonic() + BATCH_WAIT_SECONDS
    while time.monotonic() < deadline:
        batch = (await http.get(f"/v1/batches/{batch_id}")).json()
        if batch["status"] in {"completed", "failed", "cancelled"}:
            return batch_id
        await asyncio.sleep(1)
    raise TimeoutError(f"batch {batch_id} did not end within {BATCH_WAIT_SECONDS:g} s")


async def timed(http: httpx.AsyncClient, path: str, repeats: int) -> tuple[list[float], int]:
    """Seconds per answer of `path`, after one warm-up request, and the answer's size."""
    (await http.get(path)).raise_for_status()
    seconds, size = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        response = await http.get(path)
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
        size = len(response.content)
    return seconds, size


def report(label: str, seconds: list[float], size: int) -> None:
    median, slowest = statistics.median(seconds), max(seconds)
    print(
        f"{label:<44} {median * 1000:>8.0f} {slowest * 1000:>8.0f} {size / 1024:>9.0f}"
        f" {median / GOAL_SECONDS:>9.2f}"
    )


async def measure(stack: Stack, args: argparse.Namespace) -> None:
    async with stack.client(timeout=600) as http:
        run_id = await long_run(http, args.steps)
        batch_id = await big_batch(http, args.runs)
        pages = {
            f"run page, {args.steps} steps": f"/ui/runs/{run_id}",
            f"  JSON: the run with its {args.steps}-step trajectory": (
                f"/v1/runs/{run_id}?include_trajectory=true"
            ),
            f"batch page, {args.runs} runs": f"/ui/batches/{batch_id}",
            "  JSON: the batch with its run ids": f"/v1/batches/{batch_id}",
            "runs list page (50 of them)": "/ui/runs",
        }
        print(f"{'page':<44} {'p50 ms':>8} {'max ms':>8} {'size KiB':>9} {'p50/goal':>9}")
        for label, path in pages.items():
            report(label, *await timed(http, path, args.repeats))
        load = " ".join(f"{value:.2f}" for value in os.getloadavg())
        print(f"goal: {GOAL_SECONDS:g} s per page; load average {load} ({os.cpu_count()} cores)")


async def main() -> None:
    args = parse_args()
    server = await dev_server(dev_server_extra_args=DEV_SERVER_TUNING, dev_server_log_level="error")
    try:
        with tempfile.TemporaryDirectory() as workdir:
            stack = Stack(
                temporal_address=server.client.service_client.config.target_host,
                workdir=Path(workdir),
                log_level="WARNING",
            )
            stack.start_worker()
            try:
                await stack.start_api()
                await measure(stack, args)
            finally:
                stack.stop()
    finally:
        await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(0)
