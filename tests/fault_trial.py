"""Many runs of the stateful orders environment while worker processes are SIGKILLed.

Used by tests/workers/test_fault_trial.py (small) and bench/faults.py (the figures). Every
run refunds one order and opens tickets; afterwards each run's shop must hold exactly one
refund and each ticket once, in order, and its event types must be exactly those of a run
that saw no fault.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.harness import FINAL_STATUSES, Stack, answer_step, run_body, tool_step, wait_for_run

TICKETS = 3


@dataclass
class FaultReport:
    runs: int
    kills: int = 0
    runs_in_flight_at_kills: list[int] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    duplicated_effects: int = 0
    missing_effects: int = 0
    duplicated_events: int = 0
    missing_events: int = 0
    seconds: float = 0.0

    @property
    def completed(self) -> int:
        return self.statuses["completed"]

    def lines(self) -> list[str]:
        others = dict(self.statuses - Counter(completed=self.completed))
        return [
            f"runs {self.runs}, worker SIGKILLs {self.kills} "
            f"(runs in flight at each: {self.runs_in_flight_at_kills})",
            f"completed {self.completed}, other endings {others}",
            f"side effects duplicated {self.duplicated_effects}, missing {self.missing_effects}",
            f"events duplicated {self.duplicated_events}, missing {self.missing_events}",
            f"wall time {self.seconds:.1f} s",
        ]


def refund_run(step_delay: float) -> dict[str, Any]:
    steps = [
        tool_step("issue_refund", step_delay, order_id="A-1002", amount=54.5, reason="damaged"),
        *(
            tool_step("open_ticket", step_delay, order_id="A-1002", subject=f"note {n}")
            for n in range(1, TICKETS + 1)
        ),
        answer_step("Refunded and logged."),
    ]
    return run_body("orders", "refund_damaged", {"customer": "ada", "order_id": "A-1002"}, *steps)


async def fault_trial(
    stack: Stack,
    *,
    runs: int,
    kill_every: float,
    max_kills: int,
    step_delay: float,
    seed: int = 7,
    within: float = 600,
) -> FaultReport:
    """Two workers; from the moment the runs start, every ~kill_every seconds one of them is
    SIGKILLed and replaced, at most max_kills times or until every run has ended."""
    report = FaultReport(runs=runs)
    body = refund_run(step_delay)
    async with stack.client(timeout=60) as api:
        live = [stack.start_worker(), stack.start_worker()]
        baseline = await _baseline_types(api, body)
        started = time.monotonic()
        killer = asyncio.create_task(
            _kill_workers(stack, api, live, random.Random(seed), kill_every, max_kills, report)
        )
        starts = [api.post("/v1/runs", json=body) for _ in range(runs)]
        run_ids = [
            response.raise_for_status().json()["run_id"]
            for response in await asyncio.gather(*starts)
        ]
        for run_id in run_ids:
            run = await wait_for_run(api, run_id, within=within - (time.monotonic() - started))
            report.statuses[run["status"]] += 1
        report.seconds = time.monotonic() - started
        killer.cancel()
        for run_id in run_ids:
            await _check_run(api, run_id, baseline, report)
    return report


async def _kill_workers(
    stack: Stack,
    api: httpx.AsyncClient,
    live: list[subprocess.Popen[bytes]],
    chance: random.Random,
    kill_every: float,
    max_kills: int,
    report: FaultReport,
) -> None:
    while report.kills < max_kills:
        await asyncio.sleep(kill_every * chance.uniform(0.5, 1.5))
        unfinished = await _unfinished(api)
        if not unfinished:
            return
        victim = live.pop(chance.randrange(len(live)))
        victim.send_signal(signal.SIGKILL)
        live.append(stack.start_worker())
        report.kills += 1
        report.runs_in_flight_at_kills.append(unfinished)


async def _baseline_types(api: httpx.AsyncClient, body: dict[str, Any]) -> Counter[str]:
    """Event types of one run before any fault."""
    run_id = (await api.post("/v1/runs", json=body)).raise_for_status().json()["run_id"]
    await wait_for_run(api, run_id)
    return Counter(event["type"] for event in await _events(api, run_id))


async def _unfinished(api: httpx.AsyncClient) -> int:
    """Runs of the stack not yet ended (its first 200; the trial starts fewer)."""
    page = (await api.get("/v1/runs", params={"limit": 200})).json()
    return sum(1 for run in page["runs"] if run["status"] not in FINAL_STATUSES)


async def _events(api: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (
        await api.get(f"/v1/runs/{run_id}/events", params={"limit": 1000})
    ).json()
    return events


async def _check_run(
    api: httpx.AsyncClient, run_id: str, baseline: Counter[str], report: FaultReport
) -> None:
    shop = (await api.get(f"/v1/runs/{run_id}", params={"include_state": True})).json()["state"]
    refunds = len(shop["refunds"])
    subjects = Counter(ticket["subject"] for ticket in shop["tickets"])
    expected = Counter(f"note {n}" for n in range(1, TICKETS + 1))
    report.duplicated_effects += max(refunds - 1, 0) + sum((subjects - expected).values())
    report.missing_effects += max(1 - refunds, 0) + sum((expected - subjects).values())

    events = await _events(api, run_id)
    seqs = [event["seq"] for event in events]
    types = Counter(event["type"] for event in events)
    # Gaps in seq, or more or fewer events of a type than a run without faults recorded.
    report.missing_events += len(set(range(1, len(seqs) + 1)) - set(seqs))
    report.duplicated_events += sum((types - baseline).values())
    report.missing_events += sum((baseline - types).values())
