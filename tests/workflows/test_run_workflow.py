"""Agent episodes through the whole stack: HTTP → Temporal → worker process → trace store."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import CancelledError
from temporalio.worker import Replayer

from tests.harness import answer_step, run_body, tool_step, wait_for_run, wait_for_steps
from workflows.run import RunWorkflow

REFUND = run_body(
    "orders",
    "refund_damaged",
    {"customer": "ada", "order_id": "A-1002"},
    tool_step("get_order", order_id="A-1002"),
    tool_step("issue_refund", order_id="A-1002", amount=54.5, reason="damaged"),
    tool_step("open_ticket", order_id="A-1002", subject="lamp arrived damaged"),
    answer_step("Refunded 54.50 and opened T-1."),
    sync=True,
    timeout=60,
)


async def start(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/v1/runs", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_stateful_run_earns_full_reward_from_final_state(api: httpx.AsyncClient) -> None:
    run = await start(api, REFUND)
    assert run["status"] == "completed"
    assert run["stop_reason"] == "answered"
    assert run["reward"] == 1.0
    assert run["reward_details"] == {
        "refunded_in_full": True,
        "refunded_once": True,
        "ticket_opened": True,
        "no_other_refunds": True,
    }
    assert run["steps"] == 4
    assert run["answer"] == "Refunded 54.50 and opened T-1."
    assert run["usage"]["model_calls"] == 4
    assert run["torn_down"] is True


async def test_stateful_reward_sees_a_wrong_final_state(api: httpx.AsyncClient) -> None:
    body = run_body(
        "orders",
        "cancel_unshipped",
        {"customer": "bob"},
        tool_step("cancel_order", order_id="B-2002"),
        answer_step("done"),
        sync=True,
        timeout=60,
    )
    run = await start(api, body)
    assert run["reward"] == 0.0
    assert run["reward_details"] == {"orders_in_wrong_state": ["B-2003"]}


async def test_question_answering_reward_checks_the_answer(api: httpx.AsyncClient) -> None:
    right = run_body(
        "trivia",
        "capital",
        {"country": "Peru"},
        tool_step("lookup", topic="Peru"),
        answer_step("It is Lima."),
        sync=True,
        timeout=60,
    )
    wrong = {**right, "script": {"steps": [answer_step("It is Cusco.")]}}
    assert (await start(api, right))["reward"] == 1.0
    assert (await start(api, wrong))["reward"] == 0.0


async def test_stop_tool_ends_the_episode_with_its_answer(api: httpx.AsyncClient) -> None:
    body = run_body(
        "trivia",
        "total_price",
        {"unit_price": 2.5, "quantity": 4},
        tool_step("calculator", a=2.5, b=4, operation="*"),
        tool_step("submit_answer", answer="10"),
        answer_step("never reached"),
        sync=True,
        timeout=60,
    )
    run = await start(api, body)
    assert run["stop_reason"] == "stop_tool"
    assert run["answer"] == "10"
    assert run["steps"] == 2
    assert run["reward"] == 1.0


async def test_model_errors_go_back_to_the_model(api: httpx.AsyncClient) -> None:
    body = run_body(
        "trivia",
        "capital",
        {"country": "Japan"},
        tool_step("no_such_tool"),
        tool_step("calculator", a=1, b=2, operation="%"),
        tool_step("lookup", topic="Atlantis"),
        answer_step("Tokyo"),
        sync=True,
        timeout=60,
    )
    run = await start(api, body)
    assert run["status"] == "completed" and run["reward"] == 1.0
    trajectory = (
        await api.get(f"/v1/runs/{run['run_id']}", params={"include_trajectory": True})
    ).json()["trajectory"]
    tool_results = [e["data"] for e in trajectory if e["data"].get("role") == "tool"]
    assert [result["is_error"] for result in tool_results] == [True, True, True]
    assert "unknown tool 'no_such_tool'" in tool_results[0]["content"]
    assert "operation" in tool_results[1]["content"]
    assert "no entry for 'Atlantis'" in tool_results[2]["content"]


async def test_failing_setup_fails_the_run_at_once_and_tears_down(
    api: httpx.AsyncClient, temporal_client: Client
) -> None:
    body = run_body(
        "orders",
        "refund_damaged",
        {"customer": "ada", "order_id": "B-2001"},
        answer_step("never asked"),
        sync=True,
        timeout=60,
    )
    run = await start(api, body)
    assert run["status"] == "failed"
    assert run["stop_reason"] == "error"
    assert "customer 'ada' has no order 'B-2001'" in run["error"]
    assert run["steps"] == 0 and run["torn_down"] is True
    description = await temporal_client.get_workflow_handle(run["workflow_id"]).describe()
    assert description.status == WorkflowExecutionStatus.FAILED


async def test_max_steps_stops_an_agent_that_never_finishes(api: httpx.AsyncClient) -> None:
    body = run_body(
        "trivia", "capital", {"country": "Peru"}, tool_step("lookup", topic="Peru"), repeat=True
    )
    run = await start(api, {**body, "max_steps": 7, "sync": True, "timeout": 60})
    assert run["status"] == "completed"
    assert run["stop_reason"] == "max_steps"
    assert run["steps"] == 7
    assert run["reward"] == 0.0


async def test_deadline_stops_the_agent_loop(api: httpx.AsyncClient) -> None:
    body = run_body(
        "trivia",
        "capital",
        {"country": "Peru"},
        tool_step("lookup", delay=0.3, topic="Peru"),
        repeat=True,
    )
    run = await start(api, {**body, "max_duration_seconds": 2, "sync": True, "timeout": 60})
    assert run["stop_reason"] == "deadline"
    assert 1 <= run["steps"] < 500
    assert run["torn_down"] is True


async def test_cancel_mid_run_ends_cancelled_after_teardown(api: httpx.AsyncClient) -> None:
    body = run_body(
        "orders",
        "cancel_unshipped",
        {"customer": "bob"},
        tool_step("find_orders", 0.2, customer="bob"),
        repeat=True,
    )
    run = await start(api, {**body, "max_steps": 500})
    await wait_for_steps(api, str(run["run_id"]), 3)
    response = await api.post(f"/v1/runs/{run['run_id']}/cancel", json={"reason": "test"})
    assert response.status_code == 202
    ended = await wait_for_run(api, str(run["run_id"]))
    assert ended["status"] == "cancelled"
    assert ended["stop_reason"] == "cancelled"
    assert ended["torn_down"] is True
    assert ended["reward"] is None
    assert 3 <= ended["steps"] < 500
    again = await api.post(f"/v1/runs/{run['run_id']}/cancel")
    assert again.status_code == 409


async def test_cancel_through_temporal_still_tears_down(
    api: httpx.AsyncClient, temporal_client: Client
) -> None:
    body = run_body(
        "trivia",
        "capital",
        {"country": "Peru"},
        tool_step("lookup", 0.2, topic="Peru"),
        repeat=True,
    )
    run = await start(api, {**body, "max_steps": 500})
    await wait_for_steps(api, run["run_id"], 2)
    handle = temporal_client.get_workflow_handle(run["workflow_id"])
    await handle.cancel()
    ended = await wait_for_run(api, run["run_id"])
    assert (ended["status"], ended["stop_reason"]) == ("cancelled", "cancelled")
    assert ended["torn_down"] is True
    # The store records teardown before the workflow closes: wait for the close itself.
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED


async def test_temporal_shows_search_attributes_and_state(
    api: httpx.AsyncClient, temporal_client: Client
) -> None:
    run = await start(api, {**REFUND, "run_id": "sa-check-1"})
    handle = temporal_client.get_workflow_handle(str(run["workflow_id"]))
    state = await handle.query(RunWorkflow.state)
    assert state.status == "completed" and state.reward == 1.0 and state.step == 4
    found = []
    for _ in range(50):  # visibility is eventually consistent
        query = (
            'LooplineEnvironment="orders" AND LooplineScenario="refund_damaged" '
            'AND LooplineStatus="completed" AND LooplineReward=1.0 '
            f'AND WorkflowId="{run["workflow_id"]}"'
        )
        found = [execution async for execution in temporal_client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.1)
    assert len(found) == 1
    assert found[0].status == WorkflowExecutionStatus.COMPLETED
    description = await handle.describe()
    assert "orders/refund_damaged" in (await description.static_summary() or "")
    history = [event async for event in handle.fetch_history_events()]
    summaries = [
        event.user_metadata.summary for event in history if event.HasField("user_metadata")
    ]
    assert any(b"step 1" in summary.data for summary in summaries)
    # The scripted model's steps run their tools in the same activity: its result names them.
    results = [
        payload.data
        for event in history
        if event.HasField("marker_recorded_event_attributes")
        for payload in event.marker_recorded_event_attributes.details["result"].payloads
    ]
    assert any(b'"name":"issue_refund"' in result for result in results)


async def test_history_replays_and_grows_linearly(
    api: httpx.AsyncClient, temporal_client: Client
) -> None:
    sizes = {}
    for steps in (10, 40):
        body = run_body(
            "trivia", "capital", {"country": "Peru"}, tool_step("lookup", topic="Peru"), repeat=True
        )
        run = await start(api, {**body, "max_steps": steps, "sync": True, "timeout": 60})
        history = await temporal_client.get_workflow_handle(str(run["workflow_id"])).fetch_history()
        sizes[steps] = History(events=history.events).ByteSize()
        replayer = Replayer(workflows=[RunWorkflow], data_converter=pydantic_data_converter)
        await replayer.replay_workflow(history)
    per_step = (sizes[40] - sizes[10]) / 30
    assert per_step < 2_000, f"history grows {per_step:.0f} bytes per step"
