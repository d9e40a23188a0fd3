"""The rl-gym dialect: the seed's launch example with only the base URL changed, listing,
status, cancel and delete, and a run from launch to result through the dialect alone."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.upstream import Reply, Upstream

TASK = "hr__100_weaver_schedule_phone_screen"
SEED_LAUNCH: dict[str, Any] = {
    "scenario_id": "hr",
    "task_ids": [TASK],
    "rollout_count": 3,
    "max_parallel": 2,
    "model_config": {
        "model": "gpt-4o",
        "provider": "openai",
        "api_key": "sk-...",
        "temperature": 0.7,
        "max_steps": 30,
    },
}
STATUS_FIELDS = {
    "run_id",
    "scenario_id",
    "source",
    "total",
    "completed",
    "failed",
    "in_progress",
    "pending",
    "running",
    "rollout_ids",
}


async def upload_template(native: httpx.AsyncClient) -> None:
    task = {
        "slug": TASK,
        "scenario": "answer_question",
        "args": {"query": "Schedule Weaver's phone screen"},
        "env": {"name": "my-assistant"},
    }
    other = {**task, "slug": "hr__101_other"}
    response = await native.post("/v1/tasksets/upload", json={"name": "hr", "tasks": [task, other]})
    assert response.status_code == 200, response.text


async def wait_until(
    http: httpx.AsyncClient, run_id: str, done: int, within: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status: dict[str, Any] = (await http.get(f"/runs/{run_id}")).json()
        if status["completed"] + status["failed"] >= done:
            return status
        await asyncio.sleep(0.2)
    raise TimeoutError(f"run {run_id} did not finish {done} rollouts")


async def wait_for_batch_end(native: httpx.AsyncClient, batch_id: str) -> None:
    deadline = time.monotonic() + 30
    while (await native.get(f"/v1/batches/{batch_id}")).json()["status"] != "completed":
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id} did not end")
        await asyncio.sleep(0.1)


async def test_seed_launch_example_runs_to_the_end(
    base: str, key: str, native: httpx.AsyncClient, upstream: Upstream
) -> None:
    await upload_template(native)
    upstream.plan("gpt-4o", *[Reply(text="Helpful: booked for Tuesday.") for _ in range(3)])
    async with httpx.AsyncClient(
        base_url=f"{base}/rl-gym", headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        launched = await http.post("/runs", json={**SEED_LAUNCH, "run_name": "seed-launch"})
        assert launched.status_code == 200, launched.text
        body = launched.json()
        run_id = body["run_id"]
        assert run_id == "seed-launch"
        assert set(body["run_status"]) == STATUS_FIELDS
        assert body["run_status"]["source"] == "rl-gym"
        assert body["run_status"]["total"] == 3
        assert len(body["run_status"]["rollout_ids"]) == 3
        assert {r["task_id"] for r in body["rollouts"]} == {TASK}
        assert {r["scenario_id"] for r in body["rollouts"]} == {"hr"}
        assert {r["run_id"] for r in body["rollouts"]} == {run_id}

        final = await wait_until(http, run_id, 3)
        assert final["completed"] == 3
        assert final["in_progress"] == final["pending"] == final["running"] == 0

        listed = (await http.get("/runs", params={"scenario_id": "hr"})).json()
        assert run_id in [run["run_id"] for run in listed["runs"]]
        assert all(run["rollout_ids"] == [] for run in listed["runs"])
        expanded = (await http.get("/runs", params={"expand": "rollouts"})).json()
        [mine] = [run for run in expanded["runs"] if run["run_id"] == run_id]
        assert len(mine["rollout_ids"]) == 3

        again = await http.post("/runs", json={**SEED_LAUNCH, "run_name": "seed-launch"})
        assert again.status_code == 409
        assert "run_name" in again.text

        # The rollouts have ended; the run (a batch) ends once its workflow has seen them.
        await wait_for_batch_end(native, run_id)
        deleted = await http.delete(f"/runs/{run_id}")
        assert deleted.json() == {"run_id": run_id, "deleted_rollouts": 3}
        assert (await http.get(f"/runs/{run_id}")).status_code == 404

    # Each rollout called the model with the run's own key and its temperature.
    sent = upstream.requests["gpt-4o"][-3:]
    assert {r.headers["authorization"] for r in sent} == {"Bearer sk-..."}
    assert {r.body["temperature"] for r in sent} == {0.7}


async def test_overrides_sources_cancel_and_errors(
    base: str, key: str, native: httpx.AsyncClient, upstream: Upstream
) -> None:
    await upload_template(native)
    native_batch = await native.post(
        "/v1/batches",
        json={"taskset": "hr", "script": {"steps": [{"content": "helpful"}]}},
    )
    assert native_batch.status_code == 201, native_batch.text
    upstream.plan("gpt-4o-slow", *[Reply(text="Helpful.", chunk_delay=0.5) for _ in range(4)])
    launch = {
        **SEED_LAUNCH,
        "rollout_count": 4,
        "max_parallel": 1,
        "model_config": {**SEED_LAUNCH["model_config"], "model": "gpt-4o-slow"},
    }
    async with httpx.AsyncClient(
        base_url=f"{base}/rl-gym", headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        started = (await http.post("/runs", json=launch)).json()
        run_id = started["run_id"]
        cancelled = await http.post(f"/runs/{run_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["run_id"] == run_id
        assert cancelled.json()["cancelled_rollouts"] >= 3
        final = await wait_until(http, run_id, 4)
        assert final["failed"] >= 3  # cancelled rollouts count as failed

        rl_gym_only = (await http.get("/runs")).json()
        everything = (await http.get("/runs", params={"source": "all"})).json()
        native_id = native_batch.json()["batch_id"]
        assert native_id not in [run["run_id"] for run in rl_gym_only["runs"]]
        assert native_id in [run["run_id"] for run in everything["runs"]]

        stray = {**SEED_LAUNCH, "task_overrides": {"not-launched": {"name": "x"}}}
        refused = await http.post("/runs", json=stray)
        assert refused.status_code == 422
        assert "task_ids" in refused.text
        missing_key = {**SEED_LAUNCH, "model_config": {"model": "gpt-4o"}}
        assert (await http.post("/runs", json=missing_key)).status_code == 422
        hot = {**SEED_LAUNCH, "model_config": {**SEED_LAUNCH["model_config"], "temperature": 3}}
        assert (await http.post("/runs", json=hot)).status_code == 422
        unknown = await http.post("/runs", json={**SEED_LAUNCH, "scenario_id": "nope"})
        assert unknown.status_code == 422
        assert unknown.json()["detail"][0]["loc"] == ["body", "scenario_id"]
        assert "no template 'nope'" in unknown.text
        assert (await http.get("/runs/nope")).status_code == 404

        upstream.plan("gpt-4o-friday", Reply(text="Helpful: Friday it is."))
        override = {
            **SEED_LAUNCH,
            "rollout_count": 1,
            "model_config": {**SEED_LAUNCH["model_config"], "model": "gpt-4o-friday"},
            "task_overrides": {TASK: {"description": "Schedule it for Friday.", "name": "Fri"}},
        }
        overridden = (await http.post("/runs", json=override)).json()
        assert (await wait_until(http, overridden["run_id"], 1))["completed"] == 1
    first_prompt = upstream.requests["gpt-4o-friday"][0].body["messages"]
    assert any("Friday" in str(m.get("content")) for m in first_prompt)


async def test_documented_model_defaults_and_an_environments_scenarios_as_tasks(
    base: str, key: str, upstream: Upstream
) -> None:
    # Only the documented defaults: provider custom, base_url null, the provider's endpoint.
    defaults = {"model": "gpt-4o-defaults", "api_key": "sk-run"}
    upstream.plan("gpt-4o-defaults", *[Reply(text="All clean.") for _ in range(2)])
    launches = {
        "by-environment": {"scenario_id": "ops", "task_ids": ["daily_cleanup"]},
        "by-scenario": {"scenario_id": "ops/daily_cleanup", "task_ids": ["nightly"]},
    }
    async with httpx.AsyncClient(
        base_url=f"{base}/rl-gym", headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        for name, launch in launches.items():
            body = {**launch, "model_config": defaults, "run_name": name}
            launched = await http.post("/runs", json=body)
            assert launched.status_code == 200, launched.text
            [rollout] = launched.json()["rollouts"]
            assert (rollout["scenario_id"], rollout["task_id"]) == (
                launch["scenario_id"],
                launch["task_ids"][0],
            )
            assert (await wait_until(http, name, 1))["completed"] == 1

        refusals = {
            ("body", "model_config", "model"): {
                "scenario_id": "ops",
                "task_ids": ["daily_cleanup"],
                "model_config": {"model": "llama-3", "api_key": "k"},
            },
            ("body", "task_ids"): {
                "scenario_id": "ops",
                "task_ids": ["nope"],
                "model_config": defaults,
            },
            ("body", "task_ids", 0): {
                "scenario_id": "my-assistant",
                "task_ids": ["answer_question"],  # a scenario that needs args none gave
                "model_config": defaults,
            },
        }
        for loc, body in refusals.items():
            refused = await http.post("/runs", json=body)
            assert refused.status_code == 422, refused.text
            assert tuple(refused.json()["detail"][0]["loc"]) == loc, refused.text
    sent = upstream.requests["gpt-4o-defaults"]
    assert {r.headers["authorization"] for r in sent} == {"Bearer sk-run"}
