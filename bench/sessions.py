"""Figures of sessions and suspended runs, from real API and worker processes.

1. Latency from an event being recorded (its created_at) to an SSE client receiving it.
2. Temporal history of a 1,000-message session: events and bytes of each run in its
   continue-as-new chain, with the default limit and with a small one.
3. Resident memory of a worker holding N runs suspended on a client-side tool.

  python -m bench.sessions [--messages 1000] [--suspended 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from temporalio.api.history.v1 import History
from temporalio.client import Client

from tests.api.test_client_tools import client_tool_body
from tests.harness import (
    Stack,
    answer_step,
    dev_server,
    run_body,
    session_body,
    sse_events,
    start_runs,
    tool_step,
    wait_for_run,
)
from workers.cli.up import DEV_SERVER_TUNING


async def sse_latency(api: httpx.AsyncClient, steps: int) -> list[float]:
    tools = [
        tool_step("open_ticket", 0.2, order_id="A-1002", subject=f"n{n}") for n in range(steps)
    ]
    body = run_body(
        "orders",
        "refund_damaged",
        {"customer": "ada", "order_id": "A-1002"},
        *tools,
        answer_step("done"),
    )
    run_id = (await api.post("/v1/runs", json=body)).json()["run_id"]
    connected = time.time()
    delays = []
    async for event in sse_events(api, f"/v1/runs/{run_id}/events"):
        if event.event == "end":
            break
        if event.id is None:
            continue
        recorded = datetime.fromisoformat(json.loads(event.data)["created_at"]).timestamp()
        if recorded > connected:
            delays.append((time.time() - recorded) * 1000)
    return delays


async def session_history(
    api: httpx.AsyncClient, client: Client, messages: int
) -> list[tuple[int, int]]:
    run_id = (await api.post("/v1/runs", json=session_body())).json()["run_id"]
    await wait_for_run(api, run_id, until={"idle"})
    numbers = iter(range(messages))

    async def sender() -> None:
        for n in numbers:
            response = await api.post(
                f"/v1/runs/{run_id}/messages", json={"message_id": f"m{n}", "content": f"#{n}"}
            )
            response.raise_for_status()

    await asyncio.gather(*(sender() for _ in range(8)))
    await wait_for_run(api, run_id, until={"idle"}, within=300)
    await api.post(f"/v1/runs/{run_id}/close")
    await wait_for_run(api, run_id, within=60)
    chain = []
    async for execution in client.list_workflows(f"WorkflowId = 'run-{run_id}'"):
        history = await client.get_workflow_handle(
            execution.id, run_id=execution.run_id
        ).fetch_history()
        chain.append((len(history.events), History(events=history.events).ByteSize()))
    return chain


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def suspended_memory(stack: Stack, api: httpx.AsyncClient, count: int) -> tuple[float, float]:
    pid = stack.workers[0].pid
    first = await api.post("/v1/runs", json=client_tool_body())
    await wait_for_run(api, first.json()["run_id"], until={"awaiting_input"})
    baseline = rss_mib(pid)
    run_ids = await start_runs(api, client_tool_body(), count)
    for run_id in run_ids:
        await wait_for_run(api, run_id, until={"awaiting_input"}, within=300)
    await asyncio.sleep(2)
    return baseline, rss_mib(pid)


async def main(messages: int, suspended: int) -> None:
    server = await dev_server(
        dev_server_extra_args=DEV_SERVER_TUNING,
        dev_server_log_level="error",
    )
    address = server.client.service_client.config.target_host
    try:
        for limit in (10_000, 200):
            with tempfile.TemporaryDirectory() as workdir:
                stack = Stack(
                    temporal_address=address,
                    workdir=Path(workdir),
                    extra_env={"LOOPLINE_SESSION_HISTORY_LIMIT": str(limit)},
                )
                stack.start_worker()
                await stack.start_api()
                try:
                    async with stack.client(timeout=60) as api:
                        if limit == 10_000:
                            await report_latency_and_memory(stack, api, suspended)
                        chain = await session_history(api, server.client, messages)
                finally:
                    stack.stop()
            events = [length for length, _ in chain]
            sizes = [size for _, size in chain]
            print(
                f"{messages}-message session, history limit {limit}: {len(chain)} runs; "
                f"largest {max(events)} events / {max(sizes)} bytes; "
                f"total {sum(events)} events / {sum(sizes)} bytes"
            )
    finally:
        await server.shutdown()


async def report_latency_and_memory(stack: Stack, api: httpx.AsyncClient, suspended: int) -> None:
    delays = await sse_latency(api, 40)
    delays.sort()
    print(
        f"SSE latency, event recorded -> client received: median {statistics.median(delays):.1f} "
        f"ms, p90 {delays[int(len(delays) * 0.9)]:.1f} ms, max {delays[-1]:.1f} ms "
        f"({len(delays)} events, poll every 50 ms)"
    )
    baseline, loaded = await suspended_memory(stack, api, suspended)
    print(
        f"worker RSS: {baseline:.0f} MiB with 1 suspended run, {loaded:.0f} MiB with "
        f"{suspended + 1}; {(loaded - baseline) * 1024 / suspended:.1f} KiB per suspended run"
    )


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--suspended", type=int, default=1000)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _parse(sys.argv[1:])
    asyncio.run(main(args.messages, args.suspended))
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(0)
