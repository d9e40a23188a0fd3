"""Replays and forks of recorded runs on the shared stack (the same code deployed: a replay
changes nothing; a fork rebuilds its parent's state at the fork point)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from loopline.models import Scope
from tests.activities.providers.test_openai_chat import gpt
from tests.harness import (
    Stack,
    answer_step,
    run_body,
    run_to_end,
    tool_step,
    wait_for_run,
)
from tests.upstream import Reply, Upstream

DAMAGED = {"customer": "ada", "order_id": "A-1001"}
PARENT_STEPS = (
    tool_step("find_orders", customer="ada"),
    tool_step("get_order", order_id="A-1001"),
    tool_step("issue_refund", order_id="A-1001", amount=39.0, reason="damaged"),
    tool_step("open_ticket", order_id="A-1001", subject="arrived damaged"),
    answer_step("Refunded 39.00 and opened ticket T-1."),
)


async def parent_run(api: httpx.AsyncClient) -> dict[str, Any]:
    run = await run_to_end(api, run_body("orders", "refund_damaged", DAMAGED, *PARENT_STEPS))
    assert run["status"] == "completed" and run["reward"] == 1.0, run
    return run


async def trajectory(api: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    response = await api.get(
        f"/v1/runs/{run_id}/events", params={"event_types": "message", "limit": 1000}
    )
    assert response.status_code == 200, response.text
    return [event["data"] for event in response.json()]


async def test_a_replay_of_unchanged_code_reports_no_difference(api: httpx.AsyncClient) -> None:
    parent = await parent_run(api)
    body = {"run_id": f"replay-{uuid.uuid4().hex[:8]}"}
    response = await api.post(f"/v1/runs/{parent['run_id']}/replay", json=body)
    assert response.status_code == 201, response.text
    replay, report = response.json()["run"], response.json()["report"]
    assert replay["origin"] == {"kind": "replay", "run_id": parent["run_id"], "step": 5}
    assert replay["model"] == "scripted" and replay["usage"]["cost_usd"] == 0
    assert replay["reward"] == 1.0
    # The refunds and tickets hold idempotency keys made of the run id: not a difference.
    assert report["same"] is True, report
    assert report["compared_steps"] == 5 and report["ended"] is True
    recorded = await trajectory(api, parent["run_id"])
    replayed = await trajectory(api, replay["run_id"])
    assert [m.get("tool_call_id") for m in replayed] == [m.get("tool_call_id") for m in recorded]

    again = await api.post(f"/v1/runs/{parent['run_id']}/replay", json=body)
    assert again.status_code == 200 and again.json()["run"]["run_id"] == replay["run_id"]
    later = await api.get(f"/v1/runs/{replay['run_id']}/replay-report")
    assert later.status_code == 200 and later.json()["same"] is True
    # A replay's turns are its parent's: exported once, as the parent.
    exported = await api.get("/v1/exports", params={"format": "rl", "environment": "orders"})
    episodes = {json.loads(line)["run_id"] for line in exported.text.splitlines()}
    assert parent["run_id"] in episodes and replay["run_id"] not in episodes


async def test_a_fork_at_step_3_has_its_parents_state_at_step_3(api: httpx.AsyncClient) -> None:
    parent = await parent_run(api)
    fork_body = {
        "step": 3,
        "model": "scripted",
        "script": {"steps": [answer_step("Refunded; no ticket needed.")]},
    }
    response = await api.post(f"/v1/runs/{parent['run_id']}/forks", json=fork_body)
    assert response.status_code == 201, response.text
    (fork,) = response.json()["runs"]
    fork = await wait_for_run(api, fork["run_id"])
    assert fork["origin"] == {"kind": "fork", "run_id": parent["run_id"], "step": 3}
    assert fork["status"] == "completed" and fork["steps"] == 4
    # Refunded in full, once, with no ticket: three of the four checks.
    assert fork["reward"] == 0.75, fork["reward_details"]

    state = (await api.get(f"/v1/runs/{fork['run_id']}", params={"include_state": True})).json()
    assert [refund["order_id"] for refund in state["state"]["refunds"]] == ["A-1001"]
    assert state["state"]["tickets"] == []
    recorded = await trajectory(api, parent["run_id"])
    forked = await trajectory(api, fork["run_id"])
    # Up to the fork point the conversation is the parent's, state changes included.
    results = [index for index, message in enumerate(recorded) if message["role"] == "tool"]
    prefix = results[2] + 1  # through the third step's tool result
    assert [_said(m) for m in forked[:prefix]] == [_said(m) for m in recorded[:prefix]]
    assert forked[prefix]["content"] == "Refunded; no ticket needed."
    report = (await api.get(f"/v1/runs/{fork['run_id']}/replay-report")).json()
    assert report["same"] is True and report["compared_steps"] == 3, report
    page = await api.get(f"/ui/runs/{fork['run_id']}")
    assert page.status_code == 200
    assert f'href="/ui/runs/{parent["run_id"]}"' in page.text and "fork of" in page.text


async def test_a_fork_hands_over_to_another_model_after_the_fork_point(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    parent = await parent_run(api)
    model = gpt(upstream, stream=False)
    upstream.plan(model["model"], Reply(text="Refunded 39.00; a ticket is not needed."))
    body = {"step": 3, "model": model}
    response = await api.post(f"/v1/runs/{parent['run_id']}/forks", json=body)
    assert response.status_code == 201, response.text
    fork = await wait_for_run(api, response.json()["runs"][0]["run_id"])
    assert fork["status"] == "completed" and fork["steps"] == 4, fork
    assert fork["answer"] == "Refunded 39.00; a ticket is not needed."
    # One call, for step 4: the three recorded steps cost nothing and are its context.
    (call,) = upstream.requests[model["model"]]
    sent = call.body["messages"]
    assert [m["role"] for m in sent].count("tool") == 3
    assert sent[-1]["content"] == "refunded 39.00 on order A-1001"
    assert fork["usage"]["model_calls"] == 4 and fork["usage"]["prompt_tokens"] == 100


async def test_forks_of_one_step_share_a_job(api: httpx.AsyncClient) -> None:
    parent = await parent_run(api)
    fork_id = f"forks-{uuid.uuid4().hex[:8]}"
    body = {"step": 2, "rollouts": 3, "run_id": fork_id}
    response = await api.post(f"/v1/runs/{parent['run_id']}/forks", json=body)
    assert response.status_code == 201, response.text
    forks = response.json()
    assert [run["run_id"] for run in forks["runs"]] == [f"{fork_id}-{k}" for k in range(3)]
    ended = [await wait_for_run(api, run["run_id"]) for run in forks["runs"]]
    # Without another model or script, a fork goes on with the parent's own script.
    assert [run["reward"] for run in ended] == [1.0, 1.0, 1.0]
    batch = (await api.get(f"/v1/batches/{forks['batch_id']}")).json()
    assert batch["counts"]["completed"] == 3 and batch["scores"]["mean_reward"] == 1.0
    again = await api.post(f"/v1/runs/{parent['run_id']}/forks", json=body)
    assert again.status_code == 200 and again.json()["batch_id"] == forks["batch_id"]


async def test_what_cannot_be_replayed_or_forked_is_refused_saying_why(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    parent = await parent_run(api)
    beyond = await api.post(f"/v1/runs/{parent['run_id']}/forks", json={"step": 5})
    assert beyond.status_code == 422, beyond.text
    assert "from 0 to 4" in beyond.text and "answer" in beyond.text
    elsewhere = {"step": 1, "model": "client"}
    client = await api.post(f"/v1/runs/{parent['run_id']}/forks", json=elsewhere)
    assert client.status_code == 422 and "runs here" in client.text, client.text

    session = await api.post(
        "/v1/runs",
        json=run_body(
            "trivia", "capital", {"country": "Kenya"}, answer_step("Noted."), session=True
        ),
    )
    live = session.json()["run_id"]
    running = await api.post(f"/v1/runs/{live}/replay", json={"wait": False})
    assert running.status_code == 409 and "once it has ended" in running.text
    await api.post(f"/v1/runs/{live}/cancel")
    await wait_for_run(api, live)
    ended_session = await api.post(f"/v1/runs/{live}/replay", json={"wait": False})
    assert ended_session.status_code == 409 and "session" in ended_session.text

    not_derived = await api.get(f"/v1/runs/{parent['run_id']}/replay-report")
    assert not_derived.status_code == 409 and "no parent" in not_derived.text
    assert (await api.post("/v1/runs/nope/replay")).status_code == 404

    other = await stack.create_key(
        f"lineage-{uuid.uuid4().hex[:6]}", Scope.task_read, Scope.task_write
    )
    async with stack.client(other) as theirs:
        assert (await theirs.post(f"/v1/runs/{parent['run_id']}/replay")).status_code == 404
    reader = await stack.create_key("default", Scope.task_read)
    async with stack.client(reader) as read_only:
        refused = await read_only.post(f"/v1/runs/{parent['run_id']}/forks", json={"step": 1})
        assert refused.status_code == 403, refused.text


def _said(message: dict[str, Any]) -> tuple[Any, ...]:
    calls = [(call["id"], call["name"], call["arguments"]) for call in message["tool_calls"]]
    changes = message.get("state_changes")
    paths = [change["path"] for change in changes["changes"]] if changes else None
    return message["role"], message["content"], calls, paths


async def test_a_replay_calls_no_judge_and_replays_a_simulated_user_as_it_ended(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    judge = gpt(upstream, stream=False)
    verdict = {"score": 0.5, "passed": False, "reasoning": "asked a question first"}
    upstream.plan(judge["model"], Reply(text=json.dumps(verdict)))
    body = run_body(
        "trivia",
        "capital",
        {"country": "Peru"},
        answer_step("Which country do you mean?"),
        answer_step("The capital of Peru is Lima."),
        user_model="scripted",
        user_script={"steps": [{"content": "Peru."}, {"content": "Thanks! ###STOP###"}]},
        evaluation={"rubric": "Answers at once.", "judge_model": judge},
    )
    parent = await run_to_end(api, body)
    assert parent["stop_reason"] == "user_done" and parent["reward"] == 0.75, parent

    response = await api.post(f"/v1/runs/{parent['run_id']}/replay", json={})
    assert response.status_code == 201, response.text
    replay, report = response.json()["run"], response.json()["report"]
    assert len(upstream.requests[judge["model"]]) == 1  # the parent's judge, only
    assert replay["stop_reason"] == "user_done" and replay["reward"] == 0.75
    assert report["same"] is True, report
    assert report["notes"] == [
        "the rubric's verdict is the parent's, as recorded: its judge is a model, and a "
        "replay calls none"
    ]
    fork = await api.post(f"/v1/runs/{parent['run_id']}/forks", json={"step": 1})
    assert fork.status_code == 409 and "simulated user" in fork.text


async def test_a_parent_stopped_by_its_deadline_is_compared_through_its_recorded_steps(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    # A provider's model: its steps are regular activities, so the deadline is seen at once.
    model = gpt(upstream)
    lookup = Reply(tool_calls=[("find_orders", '{"customer": "ada"}')], chunk_delay=0.05)
    upstream.plan(model["model"], *[lookup] * 20)
    body = {
        "environment": "orders",
        "scenario": "refund_damaged",
        "args": DAMAGED,
        "model": model,
        "max_duration_seconds": 1,
    }
    parent = await run_to_end(api, body)
    assert parent["stop_reason"] == "deadline", parent

    response = await api.post(f"/v1/runs/{parent['run_id']}/replay", json={})
    assert response.status_code == 201, response.text
    report = response.json()["report"]
    assert report["same"] is True and report["compared_steps"] >= 1, report
    assert report["notes"] == [
        "the parent ended by deadline, which a replay does not redo: only its recorded steps "
        "are compared"
    ]


async def test_forks_that_could_not_go_on_are_refused_naming_the_field(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    parent = await parent_run(api)
    cases = [
        ({"step": 3, "max_steps": 3}, "max_steps", "at least 4"),
        ({"step": 3, "model": gpt(upstream), "script": {"steps": [{}]}}, "script", "drop script"),
        ({"step": 2, "script": {"steps": [{}], "repeat": True}}, "script", "cannot repeat"),
    ]
    for body, field, says in cases:
        response = await api.post(f"/v1/runs/{parent['run_id']}/forks", json=body)
        assert response.status_code == 422, (body, response.text)
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", field] and says in detail["msg"], detail
