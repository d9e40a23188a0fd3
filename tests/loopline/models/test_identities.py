"""Requests keep the identity they had before fields were added to them: a client that
retries a run or a batch started before an upgrade finds it instead of a conflict."""

from __future__ import annotations

from loopline.models import BatchRequest, RunRequest

SCRIPT = {"steps": [{"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}}]}]}
TASK = {"slug": "t", "scenario": "capital", "args": {}, "env": {"name": "trivia"}}


def test_a_run_request_without_the_new_fields_has_its_old_identity() -> None:
    request = RunRequest.model_validate(
        {"environment": "trivia", "scenario": "capital", "script": SCRIPT}
    )
    identity = request.identity()
    assert "task" not in identity
    assert identity["script"]["steps"][0]["tool_calls"][0] == {
        "name": "lookup",
        "arguments": {"q": "x"},
    }


def test_a_batch_request_without_the_new_fields_has_its_old_identity() -> None:
    request = BatchRequest.model_validate({"tasks": [TASK], "script": SCRIPT})
    (task,) = request.identity()["tasks"]
    assert "script" not in task and "rollout_scripts" not in task
    assert request.identity()["script"]["steps"][0]["tool_calls"][0] == {
        "name": "lookup",
        "arguments": {"q": "x"},
    }
