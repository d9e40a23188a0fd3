"""Saved histories of every workflow type replay against today's code.

A change that would break workflows already running (a command added, removed or reordered
on a path they take) fails here instead of in production. The histories are recorded by
`python -m tests.workflows.record_histories`; re-record them only on purpose, with a
versioned change (`workflow.patched`) when running workflows must go on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.batch import BatchWorkflow
from workflows.run import RunWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
HISTORY_TEXTS = {path: path.read_text() for path in HISTORIES}


def test_every_workflow_type_has_saved_histories() -> None:
    names = {path.stem for path in HISTORIES}
    assert any(name.startswith("run_") for name in names)
    assert any(name.startswith("batch") for name in names)


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_saved_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=[RunWorkflow, BatchWorkflow], data_converter=pydantic_data_converter
    )
    history = WorkflowHistory.from_json(f"replay-{path.stem}", HISTORY_TEXTS[path])
    await replayer.replay_workflow(history)
