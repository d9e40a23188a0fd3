"""What a training export costs, and that its memory does not grow with the runs it holds.

A SQLite trace store in a temporary folder gets N completed trivia runs of ten messages each
(system, user, four tool calls and their results, the answer), written straight into its
tables; SMALL of them are of the `total_price` scenario. The export service then streams
the SMALL runs (filtered by scenario) and all N, in each format, as the API would send
them. For each export it prints the runs/s of a plain pass and, from a second pass, the
tracemalloc peak and the growth of the process's RSS, and the ratio of the large export's
peak to the small one's: near 1 when memory is bounded by a page, N/SMALL if it grew with
the export. One run's figures on a shared machine: nothing is asserted.

    python -m bench.exports [--runs 100000] [--small 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from api.services.access import Access, Caller
from api.services.exports import ExportRequest, ExportService
from api.services.signing import Signer
from environments.trivia import trivia
from loopline.environment.registry import Registry
from loopline.models import EventType, Message, RunSpec, RunStatus, Scope, ToolCall
from loopline.models.exports import ExportFormat
from loopline.secrets import SecretBox
from loopline.store import Stores, open_stores
from loopline.store.exports import ExportStore
from loopline.store.tables import events, runs

PROJECT = "bench"
INSERT_CHUNK = 2000
TOOL_CALLS = 4


@dataclass(frozen=True)
class Measure:
    runs: int
    bytes: int
    seconds: float
    peak_bytes: int
    rss_growth_bytes: int


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the store")
    parser.add_argument("--small", type=int, default=1000, help="runs of the small export")
    return parser.parse_args()


def conversation(country: str) -> list[dict[str, Any]]:
    messages = [
        Message(role="system", content=trivia.system_prompt or ""),
        Message(role="user", content=f"What is the capital city of {country}?"),
    ]
    for index in range(TOOL_CALLS):
        call = ToolCall(id=f"call_{index}", name="lookup", arguments={"topic": country})
        messages.append(Message(role="assistant", tool_calls=[call]))
        messages.append(
            Message(role="tool", tool_call_id=call.id, name="lookup", content=f"{country}: ...")
        )
    messages.append(Message(role="assistant", content=f"The capital of {country} is Lima."))
    return [message.model_dump() for message in messages]


def run_row(index: int, small: bool, start: datetime) -> dict[str, Any]:
    scenario = "total_price" if small else "capital"
    spec = RunSpec(
        environment="trivia",
        scenario=scenario,
        args={"country": "Peru"},
        model="scripted",
        max_steps=20,
        project=PROJECT,
    )
    reward = float(index % 2)
    return {
        "run_id": f"bench-{index:07d}",
        "identity_hash": "bench",
        "environment": "trivia",
        "scenario": scenario,
        "model": "scripted",
        "spec": spec.model_dump(mode="json"),
        "status": RunStatus.completed.value,
        "steps": TOOL_CALLS + 1,
        "stop_reason": "answered",
        "reward": reward,
        "success": reward == 1.0,
        "evaluations": [
            {"evaluator": "scenario", "score": reward, "success": reward == 1.0, "weight": 1.0}
        ],
        "created_at": start + timedelta(milliseconds=index),
        "ended_at": start + timedelta(milliseconds=index + 1),
        "project": PROJECT,
    }


def event_rows(run_id: str, start: datetime) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "seq": seq,
            "key": f"message:{seq}",
            "type": EventType.message.value,
            "data": data,
            "created_at": start,
        }
        for seq, data in enumerate(conversation("Peru"), start=1)
    ]


async def fill(stores: Stores, total: int, small: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, total, INSERT_CHUNK):
        chunk = [
            run_row(i, i < small, start) for i in range(first, min(first + INSERT_CHUNK, total))
        ]
        chunk_events = [row for run in chunk for row in event_rows(run["run_id"], start)]

        def work(
            conn: Any, rows: list[dict[str, Any]] = chunk, said: list[dict[str, Any]] = chunk_events
        ) -> None:
            conn.execute(runs.insert(), rows)
            conn.execute(events.insert(), said)

        await stores.db.write(work)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


async def drain(service: ExportService, request: ExportRequest) -> tuple[int, int]:
    caller = Caller(project=PROJECT, scopes=frozenset({Scope.task_read}))
    lines = written = 0
    async for text in await service.export(caller, request):
        lines += text.count("\n")
        written += len(text)
    return lines, written


async def measure(service: ExportService, request: ExportRequest) -> Measure:
    gc.collect()
    started = time.perf_counter()
    lines, written = await drain(service, request)
    seconds = time.perf_counter() - started
    gc.collect()
    rss_before = rss_bytes()
    tracemalloc.start()
    await drain(service, request)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Measure(lines, written, seconds, peak, rss_bytes() - rss_before)


def report(label: str, result: Measure) -> None:
    print(
        f"{label:<28} {result.runs:>7} runs  {result.bytes / 1e6:8.1f} MB  "
        f"{result.runs / result.seconds:8.0f} runs/s  peak {result.peak_bytes / 1e6:6.2f} MB  "
        f"RSS +{result.rss_growth_bytes / 1e6:6.1f} MB"
    )


async def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'exports.db'}"
        async with open_stores(url) as stores:
            began = time.perf_counter()
            await fill(stores, args.runs, args.small)
            print(
                f"inserted {args.runs} runs of 10 messages in {time.perf_counter() - began:.1f} s"
            )
            signer = Signer.from_box(SecretBox(Fernet.generate_key()))
            access = Access(stores.keys, stores.runs, stores.batches, signer)
            service = ExportService(
                ExportStore(stores.db), access, stores.tasksets, Registry([trivia])
            )
            for format_ in ExportFormat:
                small = await measure(
                    service, ExportRequest(format=format_, scenario="total_price")
                )
                large = await measure(service, ExportRequest(format=format_))
                report(f"{format_.value}, {args.small} runs", small)
                report(f"{format_.value}, {args.runs} runs", large)
                print(
                    f"{format_.value}: peak memory ratio {large.peak_bytes / small.peak_bytes:.2f} "
                    f"for {large.runs / small.runs:.0f}x the runs"
                )


if __name__ == "__main__":
    asyncio.run(main())
