"""Per-task scripts: a task carries what model 'scripted' plays (e.g. a benchmark's gold
actions), a batch over a taskset replays every task's own, and a run of one task records it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.api.test_batches import batch_runs, wait_for_batch
from tests.api.test_tasksets import capital_task
from tests.harness import answer_step, run_to_end

UNIT_PRICE = 3


def script(answer: str) -> dict[str, Any]:
    return {"steps": [answer_step(answer)]}


def price_task(quantity: int) -> dict[str, Any]:
    """A task whose reward says whether its own answer was played: every task has another
    total, and half the scripts answer wrong. Half carry script, half rollout_scripts."""
    total = UNIT_PRICE * quantity
    answer = str(total if quantity % 2 == 0 else total + 1)
    scripts = (
        {"script": script(answer)} if quantity % 4 < 2 else {"rollout_scripts": [script(answer)]}
    )
    return {
        "slug": f"q{quantity}",
        "scenario": "total_price",
        "args": {"unit_price": UNIT_PRICE, "quantity": quantity},
        "env": {"name": "trivia"},
        **scripts,
    }


def answer(task: dict[str, Any]) -> str:
    played = task.get("script") or task["rollout_scripts"][0]
    content: str = played["steps"][0]["content"]
    return content


async def upload(api: httpx.AsyncClient, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    name = f"scripts-{uuid.uuid4().hex[:6]}"
    response = await api.post("/v1/tasksets/upload", json={"name": name, "tasks": tasks})
    assert response.status_code == 200, response.text
    return {"name": name, **response.json()}


async def test_one_batch_replays_each_tasks_own_script(api: httpx.AsyncClient) -> None:
    tasks = [price_task(quantity) for quantity in range(1, 21)]
    taskset = await upload(api, tasks)
    stored = (await api.get(f"/v1/tasksets/{taskset['name']}")).json()["tasks"]
    assert [answer(view["task"]) for view in stored] == [answer(task) for task in tasks]

    created = await api.post("/v1/batches", json={"taskset": taskset["name"], "max_parallel": 20})
    assert created.status_code == 201, created.text
    batch = await wait_for_batch(api, created.json()["batch_id"])

    assert batch["counts"]["completed"] == 20
    rewards = {run["task"]: run["reward"] for run in await batch_runs(api, batch["batch_id"])}
    assert rewards == {f"q{q}": 1.0 if q % 2 == 0 else 0.0 for q in range(1, 21)}
    by_task = {score["task"]: score["mean_reward"] for score in batch["scores"]["tasks"]}
    assert by_task == rewards


async def test_overrides_then_the_tasks_own_then_the_batchs_scripts(
    api: httpx.AsyncClient,
) -> None:
    tasks = [
        capital_task("fr", "France", script=script("Lyon")),
        capital_task("jp", "Japan", script=script("Tokyo")),
        capital_task("ke", "Kenya"),
        capital_task(
            "pe",
            "Peru",
            script=script("Quito"),
            rollout_scripts=[
                script("Lima"),
                script("Quito"),
            ],
        ),
    ]
    body = {
        "batch_id": uuid.uuid4().hex,
        "tasks": tasks,
        "rollout_count": 2,
        "script": script("Paris"),
        "rollout_scripts": [script("Nairobi")],
        "task_overrides": {"fr": {"script": script("Paris")}, "ke": {"name": "Kenya"}},
    }
    created = await api.post("/v1/batches", json=body)
    assert created.status_code == 201, created.text
    batch = await wait_for_batch(api, created.json()["batch_id"])

    rewards: dict[str, list[float]] = {}
    for run in await batch_runs(api, batch["batch_id"]):
        rewards.setdefault(run["task"], []).append(run["reward"])
    # fr: the override over the task's own; jp: the task's own over the batch's; ke: the
    # batch's rollout_scripts over its script; pe: its rollout_scripts, rollout r mod 2.
    assert rewards == {"fr": [1.0, 1.0], "jp": [1.0, 1.0], "ke": [1.0, 1.0], "pe": [1.0, 0.0]}
    # The scripts are part of the batch's identity: a retry finds it, another script is not it.
    assert (await api.post("/v1/batches", json=body)).status_code == 200
    other = {**body, "task_overrides": {"fr": {"script": script("Nice")}}}
    assert (await api.post("/v1/batches", json=other)).status_code == 409


async def test_a_scripted_batch_names_the_tasks_without_a_script(api: httpx.AsyncClient) -> None:
    tasks = [
        capital_task("fr", "France", script=script("Paris")),
        capital_task("jp", "Japan"),
        capital_task("ke", "Kenya"),
    ]
    taskset = await upload(api, tasks)

    response = await api.post("/v1/batches", json={"taskset": taskset["name"]})

    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "script"]
    assert "have none (2): jp, ke." in detail["msg"] and "task_overrides" in detail["msg"]
    overridden = {"taskset": taskset["name"], "task_overrides": {"jp": {"script": script("x")}}}
    response = await api.post("/v1/batches", json=overridden)
    assert response.status_code == 422 and "have none (1): ke." in response.text


async def test_a_run_of_a_task_plays_it_and_counts_in_the_jobs_table(
    api: httpx.AsyncClient,
) -> None:
    taskset = await upload(api, [capital_task("fr", "France", script=script("Paris"))])
    body = {"run_id": uuid.uuid4().hex, "taskset": taskset["name"], "task": "fr"}

    run = await run_to_end(api, body)

    assert run["task"] == "fr" and run["scenario"] == "capital" and run["reward"] == 1.0
    again = await api.post("/v1/runs", json=body)
    assert again.status_code == 200 and again.json()["run_id"] == run["run_id"]
    job = (await api.get(f"/v1/batches/{run['batch_id']}")).json()
    assert job["kind"] == "job" and job["taskset_id"] == taskset["taskset_id"]
    [row] = job["scores"]["tasks"]
    assert row["task"] == "fr" and row["rollouts"] == 1 and row["mean_reward"] == 1.0


async def test_a_run_of_a_task_that_cannot_be_played_says_what_to_fix(
    api: httpx.AsyncClient,
) -> None:
    tasks = [capital_task("fr", "France", script=script("Paris")), capital_task("jp", "Japan")]
    name = (await upload(api, tasks))["name"]
    refused: list[tuple[list[str], dict[str, Any]]] = [
        (["body", "task"], {"taskset": name, "task": "de"}),
        (["body", "task"], {"task": "fr"}),
        (["body", "scenario"], {"taskset": name, "task": "fr", "scenario": "total_price"}),
        (["body", "args"], {"taskset": name, "task": "fr", "args": {"country": "Peru"}}),
        (["body", "environment"], {"scenario": "capital", "script": script("Paris")}),
        (["body", "script"], {"taskset": name, "task": "jp"}),
    ]
    for where, body in refused:
        response = await api.post("/v1/runs", json=body)
        assert response.status_code == 422, (where, response.text)
        [detail] = response.json()["detail"]
        assert detail["loc"] == where, detail
    unknown = await api.post("/v1/runs", json=refused[0][1])
    assert "has no task 'de'; its tasks: fr, jp" in unknown.text
