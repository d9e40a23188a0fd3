"""Tasksets: upserted by slug, checked against the environments, run as batches or one by one."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.api.test_batches import wait_for_batch
from tests.harness import answer_step, run_body, run_to_end


def capital_task(slug: str | None, country: str, **extra: Any) -> dict[str, Any]:
    task = {"scenario": "capital", "args": {"country": country}, "env": {"name": "trivia"}, **extra}
    return task if slug is None else {"slug": slug, **task}


async def test_uploading_a_slug_twice_updates_the_one_task(api: httpx.AsyncClient) -> None:
    name = f"capitals-{uuid.uuid4().hex[:6]}"
    first = await api.post(
        "/v1/tasksets/upload",
        json={"name": name, "tasks": [capital_task("fr", "France"), capital_task(None, "Peru")]},
    )
    assert first.status_code == 200, first.text
    assert first.json()["created"] == ["fr", "0001"] and first.json()["version"] == 1

    second = await api.post(
        "/v1/tasksets/upload",
        json={"name": name, "tasks": [capital_task("fr", "France", tags=["europe"])]},
    )

    assert second.json()["updated"] == ["fr"] and second.json()["created"] == []
    taskset = (await api.get(f"/v1/tasksets/{name}")).json()
    assert taskset["task_count"] == 2 and taskset["version"] == 2
    assert [task["slug"] for task in taskset["tasks"]] == ["fr", "0001"]
    assert taskset["tasks"][0]["task"]["tags"] == ["europe"]
    again = await api.post(
        "/v1/tasksets/upload",
        json={"name": name, "tasks": [capital_task("fr", "France", tags=["europe"])]},
    )
    assert again.json()["unchanged"] == ["fr"] and again.json()["version"] == 2


async def test_bad_tasks_are_refused_with_what_to_fix(api: httpx.AsyncClient) -> None:
    reserved = await api.post(
        "/v1/tasksets/upload", json={"name": "reserved", "tasks": [capital_task("0042", "Peru")]}
    )
    assert reserved.status_code == 422 and "reserved" in reserved.text

    unknown_tool = capital_task("x", "Peru", env={"name": "trivia", "include": ["search"]})
    response = await api.post("/v1/tasksets/upload", json={"name": "bad", "tasks": [unknown_tool]})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "tasks", 0, "env", "include"] and "lookup" in detail["msg"]

    twice = [capital_task("x", "Peru"), capital_task("x", "Kenya")]
    response = await api.post("/v1/tasksets/upload", json={"name": "bad", "tasks": twice})
    assert response.status_code == 422 and "each task needs its own" in response.text
    assert (await api.get("/v1/tasksets/bad")).status_code == 404


async def test_a_taskset_runs_as_a_batch_with_overrides(api: httpx.AsyncClient) -> None:
    name = f"override-{uuid.uuid4().hex[:6]}"
    tasks = [capital_task("fr", "France"), capital_task("pe", "Peru")]
    await api.post("/v1/tasksets/upload", json={"name": name, "tasks": tasks})
    body = {
        "taskset": name,
        "task_slugs": ["pe"],
        "script": {"steps": [answer_step("Lima")]},
        "task_overrides": {
            "pe": {
                "description": "Where is the seat of Peru's government?",
                "client_context": {"trace": "abc"},
            }
        },
    }
    created = await api.post("/v1/batches", json=body)
    assert created.status_code == 201, created.text
    batch = await wait_for_batch(api, created.json()["batch_id"])

    assert batch["counts"]["completed"] == 1 and batch["taskset_id"]
    run = (
        await api.get(f"/v1/runs/{batch['run_ids'][0]}", params={"include_trajectory": True})
    ).json()
    assert run["task"] == "pe" and run["reward"] == 1.0
    assert run["metadata"] == {"client_context": {"trace": "abc"}}
    prompts = [e["data"]["content"] for e in run["trajectory"] if e["data"].get("role") == "user"]
    assert prompts == ["Where is the seat of Peru's government?"]


async def test_a_run_started_with_a_taskset_joins_its_job(api: httpx.AsyncClient) -> None:
    name = f"job-{uuid.uuid4().hex[:6]}"
    uploaded = (
        await api.post(
            "/v1/tasksets/upload", json={"name": name, "tasks": [capital_task("fr", "France")]}
        )
    ).json()
    body = run_body("trivia", "capital", {"country": "France"}, answer_step("Paris"), taskset=name)

    run = await run_to_end(api, body)

    job_id = f"job-{uploaded['taskset_id']}"
    assert run["batch_id"] == job_id and run["taskset_id"] == uploaded["taskset_id"]
    job = (await api.get(f"/v1/batches/{job_id}")).json()
    assert job["kind"] == "job" and job["run_ids"] == [run["run_id"]]
    assert job["scores"]["mean_reward"] == 1.0
