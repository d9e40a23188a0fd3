"""The dialects' translations of shapes, checked without a stack: what a seed's client
sends becomes Loopline's request, and Loopline's records become the seed's answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from api.http.dialects.agents import chat_message
from api.http.dialects.hud import EvalsetTask, evalset_task, trace_of, trace_parts
from api.http.dialects.task_runs import log_entry, task_run
from api.services.environments import ScenarioRef, scenario_id
from loopline.models import EventType, EventView, RunStatus, RunView, Usage

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def run_view(**fields: object) -> RunView:
    base: dict[str, object] = {
        "run_id": "r1",
        "workflow_id": "run-r1",
        "status": RunStatus.awaiting_input,
        "environment": "trivia",
        "scenario": "capital",
        "model": "anthropic/claude-opus-4-5",
        "args": {"country": "Peru"},
        "max_steps": 10,
        "steps": 2,
        "usage": Usage(),
        "created_at": NOW,
    }
    return RunView.model_validate({**base, **fields})


def event(seq: int, kind: EventType, **data: object) -> EventView:
    return EventView(seq=seq, key=f"event:{seq}", type=kind, created_at=NOW, data=data)


def test_a_hud_trace_is_running_while_the_run_waits_for_its_caller() -> None:
    trace = trace_of(run_view())
    assert (trace.trace_id, trace.status, trace.steps) == ("r1", "running", 2)
    assert trace.scenario.scenario_args == {"country": "Peru"}
    assert trace_of(run_view(status=RunStatus.failed)).status == "error"


def test_a_hud_trace_splits_its_events_into_trajectory_logs_and_rollout_logs() -> None:
    parts = trace_parts(
        [
            event(1, EventType.message, role="user", content="Capital?"),
            event(2, EventType.log, message="sandbox up"),
            event(3, EventType.status, status="completed"),
        ]
    )
    assert parts["trajectory"] == [{"role": "user", "content": "Capital?"}]
    assert [e.seq for e in parts["logs"]] == [2]
    assert [e.seq for e in parts["rollout_logs"]] == [3]


def test_a_hud_evalset_task_plays_its_scenario_with_its_args() -> None:
    task = evalset_task(
        EvalsetTask.model_validate(
            {
                "scenario_id": scenario_id("trivia", "capital"),
                "scenario_args": [{"name": "country", "value": "Peru"}],
                "tier": 2,
                "external_id": "peru",
            }
        ),
        ScenarioRef("trivia", "capital"),
    )
    assert (task.env.name, task.scenario, task.slug) == ("trivia", "capital", "peru")
    assert task.args == {"country": "Peru"} and task.metadata == {"tier": 2}


def test_a_scenario_id_is_a_uuid_of_its_environment_and_name() -> None:
    first = scenario_id("trivia", "capital")
    assert uuid.UUID(first).version == 5
    assert scenario_id("trivia", "capital") == first
    assert scenario_id("trivia", "capitals") != first


def test_an_agents_api_message_carries_tool_calls_as_functions() -> None:
    message = chat_message(
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "name": "read_file", "arguments": {"path": "a"}}],
        }
    )
    assert message["tool_calls"] == [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "read_file", "arguments": '{"path": "a"}'},
        }
    ]


def test_a_task_runs_log_entry_keeps_its_extra_fields_and_state_is_client_state() -> None:
    entry = log_entry({"message": "built", "level": "info", "commit": "abc"})
    assert (entry.message, entry.data) == ("built", {"commit": "abc"})
    unlabelled = log_entry({"step": 3})
    assert unlabelled.message == '{"step": 3}'
    shaped = task_run(run_view(client_state={"cursor": 7}, stage="review"), "set:fr")
    assert (shaped.state, shaped.stage, shaped.task_id) == ({"cursor": 7}, "review", "set:fr")
