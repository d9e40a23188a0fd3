"""The floor under Loopline's per-step cost: a no-op local activity on this machine.

A workflow runs N no-op local activities in sequence on a dev server with one task-queue
partition (as `loopline up` starts it); prints ms per local activity.

    python -m bench.local_activity_floor [--count 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from loopline.temporal import temporal_binary
    from workers.cli.up import DEV_SERVER_TUNING


@activity.defn
async def noop(value: int) -> int:
    return value


@workflow.defn
class LocalActivityFloor:
    @workflow.run
    async def run(self, count: int) -> int:
        for index in range(count):
            await workflow.execute_local_activity(
                noop, index, start_to_close_timeout=timedelta(seconds=10)
            )
        return count


async def main(count: int) -> None:
    server = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), dev_server_extra_args=DEV_SERVER_TUNING
    )
    try:
        async with Worker(
            server.client, task_queue="floor", workflows=[LocalActivityFloor], activities=[noop]
        ):
            await server.client.execute_workflow(
                LocalActivityFloor.run, 5, id="warm-up", task_queue="floor"
            )
            started = time.perf_counter()
            await server.client.execute_workflow(
                LocalActivityFloor.run, count, id="timed", task_queue="floor"
            )
            elapsed = time.perf_counter() - started
    finally:
        await server.shutdown()
    print(f"{count} sequential no-op local activities: {elapsed / count * 1000:.2f} ms each")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    asyncio.run(main(parser.parse_args().count))
    sys.stdout.flush()
    os._exit(0)  # temporalio/sdk-python#300: avoid the crash at interpreter exit
