"""Batches end to end: the parallelism cap, cancel, scores, delete."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.harness import answer_step

CAPITAL_TASKS = [
    {
        "slug": country,
        "scenario": "capital",
        "args": {"country": country},
        "env": {"name": "trivia"},
    }
    for country in ("France", "Japan", "Kenya")
]


async def wait_for_batch(
    http: httpx.AsyncClient, batch_id: str, *, within: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        batch: dict[str, Any] = (await http.get(f"/v1/batches/{batch_id}")).json()
        if batch["status"] in {"completed", "cancelled", "failed"}:
            return batch
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id} still {batch['status']}: {batch['counts']}")
        await asyncio.sleep(0.2)


async def batch_runs(http: httpx.AsyncClient, batch_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/v1/batches/{batch_id}/runs", params={"limit": 1000})
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()["runs"]
    return runs


async def run_events(http: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/v1/runs/{run_id}/events", params={"limit": 1000})
    events: list[dict[str, Any]] = response.json()
    return events


async def test_the_parallelism_cap_holds(api: httpx.AsyncClient) -> None:
    body = {
        "tasks": CAPITAL_TASKS,
        "rollout_count": 4,
        "max_parallel": 3,
        "script": {"steps": [{"content": "Paris", "delay_seconds": 0.3}]},
    }
    response = await api.post("/v1/batches", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["counts"]["total"] == 12 and len(created["run_ids"]) == 12

    batch = await wait_for_batch(api, created["batch_id"])

    assert batch["counts"] == {
        "total": 12,
        "pending": 0,
        "running": 0,
        "completed": 12,
        "failed": 0,
        "cancelled": 0,
    }
    spans = []
    for run in await batch_runs(api, created["batch_id"]):
        events = await run_events(api, run["run_id"])
        start = next(e["created_at"] for e in events if e["data"].get("role") == "user")
        spans.append((start, run["ended_at"]))
    # At every run's start, how many runs had started and not yet ended.
    overlaps = [sum(1 for s, e in spans if s <= start < e) for start, _ in spans]
    assert max(overlaps) <= 3, spans
    assert max(overlaps) >= 2, "the runs never overlapped: the batch ran them one by one"


async def test_scores_and_pass_at_k_follow_the_rewards(api: httpx.AsyncClient) -> None:
    # Every rollout answers "Paris": France succeeds each time, the others never do, and
    # rollout scripts make Japan succeed in one rollout of three.
    body = {
        "tasks": CAPITAL_TASKS[:2],
        "rollout_count": 3,
        "max_parallel": 6,
        "rollout_scripts": [
            {"steps": [answer_step("Paris")]},
            {"steps": [answer_step("Paris, or Tokyo")]},
            {"steps": [answer_step("Paris")]},
        ],
    }
    created = (await api.post("/v1/batches", json=body)).json()
    batch = await wait_for_batch(api, created["batch_id"])

    scores = batch["scores"]
    by_task = {task["task"]: task for task in scores["tasks"]}
    assert by_task["France"]["success_rate"] == 1.0
    assert by_task["France"]["pass_at_k"] == {"1": 1.0, "2": 1.0, "3": 1.0}
    japan = by_task["Japan"]["pass_at_k"]
    # n=3, c=1: pass@1 = 1/3, pass@2 = 1 - C(2,2)/C(3,2) = 2/3, pass@3 = 1.
    assert abs(japan["1"] - 1 / 3) < 1e-9 and abs(japan["2"] - 2 / 3) < 1e-9
    assert japan["3"] == 1.0
    assert abs(scores["pass_at_k"]["1"] - (1 + 1 / 3) / 2) < 1e-9
    assert abs(scores["success_rate"] - 4 / 6) < 1e-9
    assert abs(scores["mean_reward"] - 4 / 6) < 1e-9
    assert batch["usage"]["model_calls"] == 6


async def test_cancelling_a_batch_stops_every_run_and_tears_each_down(
    api: httpx.AsyncClient,
) -> None:
    never_ending = {
        "steps": [
            {
                "tool_calls": [{"name": "lookup", "arguments": {"topic": "peru"}}],
                "delay_seconds": 0.2,
            }
        ],
        "repeat": True,
    }
    body = {
        "tasks": CAPITAL_TASKS,
        "rollout_count": 3,
        "max_parallel": 4,
        "script": never_ending,
        "max_steps": 500,
    }
    created = (await api.post("/v1/batches", json=body)).json()
    batch_id = created["batch_id"]
    deadline = time.monotonic() + 60
    while (await api.get(f"/v1/batches/{batch_id}")).json()["counts"]["running"] < 4:
        assert time.monotonic() < deadline, "the batch never had 4 runs going"
        await asyncio.sleep(0.1)

    cancelled = await api.post(f"/v1/batches/{batch_id}/cancel", json={"reason": "enough"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelled_runs"] == 9

    batch = await wait_for_batch(api, batch_id)
    assert batch["status"] == "cancelled"
    assert batch["counts"]["cancelled"] == 9 and batch["counts"]["running"] == 0
    runs = await batch_runs(api, batch_id)
    started = [run for run in runs if run["steps"] > 0]
    assert len(started) >= 4
    for run in runs:
        assert run["status"] == "cancelled"
    for run in started:
        assert run["torn_down"], f"run {run['run_id']} was not torn down"
    assert (await api.post(f"/v1/batches/{batch_id}/cancel")).status_code == 409


async def test_delete_removes_the_batch_and_its_runs(api: httpx.AsyncClient) -> None:
    body = {
        "tasks": CAPITAL_TASKS[:1],
        "rollout_count": 2,
        "script": {"steps": [answer_step("Paris")]},
    }
    created = (await api.post("/v1/batches", json=body)).json()
    batch = await wait_for_batch(api, created["batch_id"])

    deleted = await api.delete(f"/v1/batches/{batch['batch_id']}")

    assert deleted.json() == {"batch_id": batch["batch_id"], "deleted_runs": 2}
    assert (await api.get(f"/v1/batches/{batch['batch_id']}")).status_code == 404
    for run_id in batch["run_ids"]:
        assert (await api.get(f"/v1/runs/{run_id}")).status_code == 404


async def test_a_batch_request_that_cannot_run_says_what_to_fix(api: httpx.AsyncClient) -> None:
    bad_args = [{**CAPITAL_TASKS[0], "args": {"land": "France"}}]
    response = await api.post("/v1/batches", json={"tasks": bad_args, "script": {"steps": [{}]}})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"][:3] == ["body", "tasks", 0] and "France" in detail["msg"]

    tasks = [{**CAPITAL_TASKS[0], "slug": f"t{n}"} for n in range(21)]
    too_many = {"tasks": tasks, "rollout_count": 1000, "script": {"steps": [{}]}}
    response = await api.post("/v1/batches", json=too_many)
    assert response.status_code == 422 and "at most 20000" in response.text

    response = await api.post("/v1/batches", json={"taskset": "no-such-set"})
    assert response.status_code == 422 and "no-such-set" in response.text
