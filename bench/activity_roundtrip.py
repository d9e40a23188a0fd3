"""What the dev-server tuning of `loopline up` buys a workflow of sequential regular activities.

Two dev servers run side by side, both with one task-queue partition:
  default: the stock dynamic config, whose history transfer-queue reader is limited to
           20 polls a second per shard (the dev server has one shard), so after the first
           ~20 steps each step waits for the limiter;
  tuned:   `DEV_SERVER_TUNING` from `loopline up`, which lifts that limit.
On each, an in-process worker runs a workflow of N trivial regular activities in sequence;
the same workflow with local activities on the tuned server is the floor. The servers take
turns, round by round. Timings come from each workflow's history: per step, the time between
consecutive workflow-task completions, and the workflow task's pickup (scheduled to
started). It prints medians for steps 1-20 and 30-N, ratios from this one run and the load
average: this machine is shared, so nothing is asserted.

    python -m bench.activity_roundtrip [--steps 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

# The workflow below runs in the sandbox; what the bench itself uses passes through.
with workflow.unsafe.imports_passed_through():
    from google.protobuf.timestamp_pb2 import Timestamp

    from loopline.temporal import temporal_binary
    from workers.cli.up import DEV_SERVER_TUNING

DEFAULT, TUNED, FLOOR = "default", "tuned", "local-activity floor"
# `loopline up` without the queue readers' poll limits raised: the one thing compared here.
ONE_PARTITION = [
    "--dynamic-config-value",
    "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
]
SERVER_ARGS = {DEFAULT: ONE_PARTITION, TUNED: DEV_SERVER_TUNING}
TASK_QUEUE = "roundtrip"
ACTIVITY_TIMEOUT = timedelta(seconds=10)
# A fresh server's first workflow also pays for setting up the namespace and task queue.
WARM_UP_STEPS = 5
EARLY_STEPS = (1, 20)
# The default server's stall starts after ~20 steps and is steady by step 30.
LATE_FIRST_STEP = 30
COLUMN = 14  # characters per column of the printed table


@dataclass(frozen=True)
class StepsInput:
    steps: int
    local: bool


@activity.defn
async def echo(value: int) -> int:
    return value


@workflow.defn
class SequentialSteps:
    @workflow.run
    async def run(self, spec: StepsInput) -> int:
        for index in range(spec.steps):
            if spec.local:
                await workflow.execute_local_activity(
                    echo, index, start_to_close_timeout=ACTIVITY_TIMEOUT
                )
            else:
                await workflow.execute_activity(
                    echo, index, start_to_close_timeout=ACTIVITY_TIMEOUT
                )
        return spec.steps


@dataclass(frozen=True)
class WorkflowTask:
    scheduled: Timestamp
    started: Timestamp
    completed: Timestamp


@dataclass(frozen=True)
class RunTimes:
    """One workflow's timings in ms; the per-step lists are empty for local activities, which
    all complete within a single workflow task."""

    ms_per_step: float
    step_ms: list[float]
    pickup_ms: list[float]


def _ms(start: Timestamp, end: Timestamp) -> float:
    return (end.ToNanoseconds() - start.ToNanoseconds()) / 1e6


def workflow_tasks(events: Sequence[HistoryEvent]) -> list[WorkflowTask]:
    # Completions name their own scheduled and started events, so a retried task is timed
    # by the attempt that completed.
    times = {event.event_id: event.event_time for event in events}
    return [
        WorkflowTask(
            scheduled=times[event.workflow_task_completed_event_attributes.scheduled_event_id],
            started=times[event.workflow_task_completed_event_attributes.started_event_id],
            completed=event.event_time,
        )
        for event in events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]


def run_times(events: Sequence[HistoryEvent], steps: int) -> RunTimes:
    # The first workflow task schedules step 1 and each later one is woken by a step's
    # completion and schedules the next: step k runs from task k-1's completion to task k's.
    tasks = workflow_tasks(events)
    return RunTimes(
        ms_per_step=_ms(events[0].event_time, events[-1].event_time) / steps,
        step_ms=[_ms(previous.completed, task.completed) for previous, task in pairwise(tasks)],
        pickup_ms=[_ms(task.scheduled, task.started) for task in tasks[1:]],
    )


async def timed_run(client: Client, workflow_id: str, spec: StepsInput) -> RunTimes:
    handle = await client.start_workflow(
        SequentialSteps.run, spec, id=workflow_id, task_queue=TASK_QUEUE
    )
    await handle.result()
    history = await handle.fetch_history()
    return run_times(history.events, spec.steps)


async def serve(stack: AsyncExitStack, extra_args: list[str]) -> Client:
    """A dev server with a worker on it, both stopped when `stack` closes."""
    server = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=extra_args,
        dev_server_log_level="error",
    )
    stack.push_async_callback(server.shutdown)
    worker = Worker(
        server.client, task_queue=TASK_QUEUE, workflows=[SequentialSteps], activities=[echo]
    )
    await stack.enter_async_context(worker)
    return server.client


async def measure(clients: dict[str, Client], steps: int, rounds: int) -> dict[str, list[RunTimes]]:
    for client in clients.values():
        await timed_run(client, "warm-up", StepsInput(WARM_UP_STEPS, local=False))
    results: dict[str, list[RunTimes]] = {name: [] for name in [*clients, FLOOR]}
    for round_index in range(rounds):
        for name, client in clients.items():
            spec = StepsInput(steps, local=False)
            results[name].append(await timed_run(client, f"regular-{round_index}", spec))
        spec = StepsInput(steps, local=True)
        results[FLOOR].append(await timed_run(clients[TUNED], f"local-{round_index}", spec))
    return results


def window_median(per_run: list[list[float]], first: int, last: int) -> float | None:
    """The median of steps `first` to `last` (from 1, inclusive), pooled over the runs."""
    pooled = [value for values in per_run for value in values[first - 1 : last]]
    return statistics.median(pooled) if pooled else None


@dataclass(frozen=True)
class Row:
    ms_per_step: float
    step_early: float | None
    step_late: float | None
    pickup_early: float | None
    pickup_late: float | None


def summarise(runs: list[RunTimes], steps: int) -> Row:
    step = [run.step_ms for run in runs]
    pickup = [run.pickup_ms for run in runs]
    return Row(
        ms_per_step=statistics.median(run.ms_per_step for run in runs),
        step_early=window_median(step, *EARLY_STEPS),
        step_late=window_median(step, LATE_FIRST_STEP, steps),
        pickup_early=window_median(pickup, *EARLY_STEPS),
        pickup_late=window_median(pickup, LATE_FIRST_STEP, steps),
    )


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None:
        return "-"
    return f"{numerator / denominator:.1f}x"


def _table(rows: dict[str, Row], steps: int) -> list[str]:
    early = f"{EARLY_STEPS[0]}-{EARLY_STEPS[1]}"
    late = f"{LATE_FIRST_STEP}-{steps}"
    headings = ("whole run", f"step {early}", f"step {late}", f"pickup {early}", f"pickup {late}")
    lines = [f"{'server':<22}" + "".join(f"{heading:>{COLUMN}}" for heading in headings)]
    for name, row in rows.items():
        cells = (row.step_early, row.step_late, row.pickup_early, row.pickup_late)
        lines.append(
            f"{name:<22}{row.ms_per_step:>{COLUMN}.2f}"
            + "".join(f"{_cell(value):>{COLUMN}}" for value in cells)
        )
    return lines


def report(results: dict[str, list[RunTimes]], steps: int, rounds: int) -> None:
    rows = {name: summarise(runs, steps) for name, runs in results.items()}
    default, tuned, floor = rows[DEFAULT], rows[TUNED], rows[FLOOR]
    print(
        f"{steps} sequential trivial activities, {rounds} rounds; ms per step, medians "
        "(whole run: history span / steps)"
    )
    print("\n".join(_table(rows, steps)))
    print(
        f"default / tuned: {_ratio(default.ms_per_step, tuned.ms_per_step)} per step, "
        f"{_ratio(default.pickup_late, tuned.pickup_late)} pickup {LATE_FIRST_STEP}-{steps}"
    )
    print(f"tuned / local-activity floor: {_ratio(tuned.ms_per_step, floor.ms_per_step)} per step")
    print("load average (1, 5, 15 min): " + " ".join(f"{load:.2f}" for load in os.getloadavg()))


async def main(steps: int, rounds: int) -> None:
    async with AsyncExitStack() as stack:
        clients = {name: await serve(stack, args) for name, args in SERVER_ARGS.items()}
        results = await measure(clients, steps, rounds)
    report(results, steps, rounds)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.steps < LATE_FIRST_STEP:
        parser.error(f"--steps must be at least {LATE_FIRST_STEP}, where the late window starts")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


if __name__ == "__main__":
    args = _parse(sys.argv[1:])
    asyncio.run(main(args.steps, args.rounds))
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(0)
