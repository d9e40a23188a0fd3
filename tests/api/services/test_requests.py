"""Run requests resolved as the service does, without a stack: what is wrong is said at
its field, and a task's mistakes at the task's own field."""

from __future__ import annotations

from typing import Any

import pytest

from api.services.errors import Invalid
from api.services.requests import resolve, run_input
from api.services.tasks import check_task
from loopline.environment.registry import Registry
from loopline.models import RunRequest, TaskDefinition
from loopline.settings import DEFAULT_ENVIRONMENT_MODULES

REGISTRY = Registry.from_modules(DEFAULT_ENVIRONMENT_MODULES)
QUICK: dict[str, Any] = {
    "environment": "trivia",
    "scenario": "capital",
    "args": {"country": "Japan"},
    "script": {"steps": [{"content": "Tokyo"}]},
}


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        ({"environment": "nope"}, ["body", "environment"], "available: chat, orders, trivia"),
        ({"scenario": "nope"}, ["body", "scenario"], "available: capital, total_price"),
        ({"args": {}}, ["body", "args", "country"], "Field required"),
        ({"args": {"country": 7}}, ["body", "args", "country"], "valid string"),
        ({"args": {"country": "x" * 1_000_001}}, ["body", "args"], "over the limit"),
        ({"script": None}, ["body", "script"], "plays the script sent with the run"),
        ({"model": "gpt-x"}, ["body", "model"], "write 'provider/model'"),
        ({"model": "custom/llama"}, ["body", "model"], "needs base_url"),
        ({"include_tools": ["nope"]}, ["body", "include_tools"], "has no tool nope"),
        ({"client_tools": [{"name": "lookup"}]}, ["body", "client_tools", 0, "name"], "already"),
        (
            {"session": True, "user_model": "scripted", "user_script": {"steps": [{}]}},
            ["body", "session"],
            "drop user_model",
        ),
        ({"evaluation": {"rubric": "r"}}, ["body", "evaluation", "judge_script"], "verdict"),
        (
            {"evaluation": {"validation": [{"name": "nope"}]}},
            ["body", "evaluation", "validation", 0, "name"],
            "cannot call",
        ),
    ],
)
def test_a_bad_run_request_is_refused_at_its_field(
    change: dict[str, Any], where: list[str | int], says: str
) -> None:
    with pytest.raises(Invalid) as refused:
        resolve(RunRequest.model_validate({**QUICK, **change}), REGISTRY)
    assert refused.value.loc == where
    assert says in refused.value.message


def test_a_resolved_run_keeps_its_keys_out_of_the_spec_and_the_workflow_input() -> None:
    request = RunRequest.model_validate(
        {
            **QUICK,
            "script": None,
            "model": {"model": "gpt-4o", "provider": "openai", "api_key": "sk-secret-1"},
        }
    )
    resolved = resolve(request, REGISTRY)
    assert resolved.secrets == {"model": "sk-secret-1"}
    assert "sk-secret-1" not in resolved.spec.model_dump_json()
    started = run_input("r1", resolved.spec, request, 10_000, "loopline")
    assert "sk-secret-1" not in started.model_dump_json()
    assert started.model_queue_prefix == "loopline-model-"
    assert not started.model_is_local


def test_a_task_is_refused_at_the_tasks_own_field() -> None:
    task = TaskDefinition.model_validate(
        {
            "slug": "t",
            "scenario": "capital",
            "args": {"country": "Peru"},
            "env": {"name": "trivia", "exclude": ["nope"]},
        }
    )
    with pytest.raises(Invalid) as refused:
        check_task(task, REGISTRY, ["body", "tasks", 3])
    assert refused.value.loc == ["body", "tasks", 3, "env", "exclude"]
    assert refused.value.message.startswith("task 't': ")
