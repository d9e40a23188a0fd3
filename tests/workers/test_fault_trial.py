"""Two workers, one SIGKILLed again and again while 100 runs are in flight: every run
completes, every side effect applied once, no event duplicated or missing."""

from __future__ import annotations

from tests.fault_trial import fault_trial
from tests.harness import Stack

RUNS = 100


async def test_runs_survive_repeated_worker_kills(private_stack: Stack) -> None:
    report = await fault_trial(
        private_stack, runs=RUNS, kill_every=2.0, max_kills=4, step_delay=0.2, within=240
    )

    assert report.kills >= 2, report.lines()
    assert max(report.runs_in_flight_at_kills) > 0, report.lines()
    assert report.completed == RUNS, report.lines()
    assert report.duplicated_effects == 0, report.lines()
    assert report.missing_effects == 0, report.lines()
    assert report.duplicated_events == 0, report.lines()
    assert report.missing_events == 0, report.lines()
