"""Whether a second worker process helps: the same batch of one-step scripted rollouts on
one worker, then on two, each through the real API, interleaved and repeated.

  python -m bench.worker_count [--rollouts 200] [--max-parallel 50] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.batches import loopline_batch
from tests.harness import Stack, dev_server
from workers.cli.up import DEV_SERVER_TUNING


async def batch_seconds(address: str, workers: int, rollouts: int, max_parallel: int) -> float:
    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(temporal_address=address, workdir=Path(workdir), log_level="WARNING")
        for _ in range(workers):
            stack.start_worker()
        await stack.start_api()
        try:
            async with stack.client(timeout=60) as api:
                await loopline_batch(api, 10, 10)  # warm-up: every worker has polled
                return await loopline_batch(api, rollouts, max_parallel)
        finally:
            stack.stop()


async def main(rollouts: int, max_parallel: int, repeats: int) -> None:
    server = await dev_server(dev_server_extra_args=DEV_SERVER_TUNING, dev_server_log_level="error")
    address = server.client.service_client.config.target_host
    seconds: dict[int, list[float]] = {1: [], 2: []}
    try:
        for _ in range(repeats):
            for workers in seconds:
                elapsed = await batch_seconds(address, workers, rollouts, max_parallel)
                seconds[workers].append(elapsed)
    finally:
        await server.shutdown()
    load = os.getloadavg()[0]
    print(f"{rollouts} one-step rollouts, max_parallel {max_parallel}, {os.cpu_count()} cores:")
    for workers, values in seconds.items():
        median = statistics.median(values)
        print(f"  {workers} worker(s): {median:.2f} s, {rollouts / median:.1f} rollouts/s")
    one, two = (statistics.median(seconds[n]) for n in (1, 2))
    print(f"  2 workers / 1 worker throughput: {one / two:.2f} (load average {load:.1f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollouts", type=int, default=200)
    parser.add_argument("--max-parallel", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rollouts, arguments.max_parallel, arguments.repeats))
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(0)
