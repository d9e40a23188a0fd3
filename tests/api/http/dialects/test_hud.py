"""The hud dialect: the seed guides' examples, with only the base URL changed, and a run
from start to result through the dialect alone."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.api.http.dialects.conftest import Inbox
from tests.upstream import Reply, Upstream

SEED_CURL_BODY: dict[str, Any] = {
    "env_name": "my-assistant",
    "scenario_name": "answer_question",
    "scenario_args": {"query": "What is the capital of France?"},
    "model": "claude-opus-4-5",
    "max_steps": 100,
}
TRACE_FIELDS = {"trace_id", "trace_url", "status", "reward", "scenario", "model", "steps"}


def hud(base: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{base}/hud",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=120,
    )


async def test_seed_curl_example_runs_and_returns_its_trace(
    base: str, key: str, upstream: Upstream
) -> None:
    upstream.plan("claude-opus-4-5", Reply(text="A helpful answer: Paris."))
    async with hud(base, key) as http:
        response = await http.post("/v1/agent/run", json=SEED_CURL_BODY)
        assert response.status_code == 200, response.text
        result = response.json()
        # sync is the default: the answer comes back with the trace id.
        assert result["status"] == "completed"
        assert result["reward"] == 1.0
        assert result["response"] == "A helpful answer: Paris."
        trace = (await http.get(f"/telemetry/traces/{result['trace_id']}")).json()
    assert set(trace) >= TRACE_FIELDS
    assert trace["scenario"] == {
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": "What is the capital of France?"},
    }
    # The model as sent; its parts not asked for are absent, not null.
    assert trace["model"] == "claude-opus-4-5"
    assert not {"trajectory", "logs", "rollout_logs"} & set(trace)


async def test_seed_webhook_and_chat_examples(base: str, key: str, upstream: Upstream) -> None:
    upstream.plan("claude-opus-4-5", Reply(text="Ticket T-42 is resolved."))
    upstream.plan("claude-opus-4-5", Reply(text="Hello there!"))
    webhook_body = {
        "env_name": "support-agent",
        "scenario_name": "handle_ticket",
        "scenario_args": {"ticket_id": "T-42"},
        "model": "claude-opus-4-5",
    }
    chat_body = {
        "env_name": "chat-assistant",
        "scenario_name": "respond",
        "scenario_args": {"message": "hi"},
        "model": "claude-opus-4-5",
    }
    async with httpx.AsyncClient(timeout=120) as http:
        headers = {"Authorization": f"Bearer {key}"}
        webhook = await http.post(f"{base}/hud/v1/agent/run", headers=headers, json=webhook_body)
        chat = await http.post(f"{base}/hud/v1/agent/run", headers=headers, json=chat_body)
    assert webhook.status_code == 200, webhook.text
    assert webhook.json()["trace_id"]
    assert webhook.json()["reward"] == 1.0
    assert chat.json()["response"] == "Hello there!"


async def test_async_polling_pattern_and_trace_read_back(
    base: str, key: str, upstream: Upstream
) -> None:
    upstream.plan(
        "gpt-4o-hud",
        Reply(tool_calls=[("search", '{"query": "France"}')]),
        Reply(text="Paris, a helpful answer.", chunk_delay=0.05),
    )
    body = {**SEED_CURL_BODY, "model": "gpt-4o-hud", "sync": False}
    async with hud(base, key) as http:
        started = await http.post("/agent/run", json=body)
        assert started.status_code == 200, started.text
        assert set(started.json()) == {"trace_id", "trace_url", "status"}
        assert started.json()["status"] == "running"
        trace_id = started.json()["trace_id"]

        status = await _poll(http, trace_id)
        assert status == {"trace_id": trace_id, "status": "completed", "reward": 1.0}

        light = (await http.get(f"/telemetry/traces/{trace_id}")).json()
        assert "trajectory" not in light
        assert light["model"] == "gpt-4o-hud"
        params = {"include_trajectory": True, "include_logs": True, "include_rollout_logs": True}
        full = (await http.get(f"/telemetry/traces/{trace_id}", params=params)).json()
        roles = [step["role"] for step in full["trajectory"]]
        assert roles == ["user", "assistant", "tool", "assistant"]
        assert full["logs"] == []
        rollout_types = {event["type"] for event in full["rollout_logs"]}
        assert {"status", "reward"} <= rollout_types

        telemetry = (await http.get(f"/telemetry/trace/{trace_id}")).json()
        assert [step["role"] for step in telemetry["trajectory"]] == roles
        assert telemetry["screenshots"] == []

        unknown = await http.post("/telemetry/traces/status", json={"trace_ids": ["nope"]})
        assert unknown.json()["traces"] == [
            {"trace_id": "nope", "status": "not_found", "reward": None}
        ]


async def _poll(http: httpx.AsyncClient, trace_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = await http.post("/telemetry/traces/status", json={"trace_ids": [trace_id]})
        [status] = answer.json()["traces"]
        if status["status"] != "running":
            return dict(status)
        await asyncio.sleep(0.2)
    raise TimeoutError(f"trace {trace_id} still running")


async def test_tasks_evalsets_jobs_and_callback(
    base: str, key: str, upstream: Upstream, inbox: Inbox
) -> None:
    upload: dict[str, Any] = {
        "name": "hud-evalset",
        "tasks": [
            {
                "slug": "france",
                "scenario": "answer_question",
                "args": {"query": "France?"},
                "env": {"name": "my-assistant", "include": ["search"]},
                "agent_config": {"system_prompt": "Be brief."},
                "validation": [{"name": "search", "arguments": {"query": "France"}}],
            }
        ],
    }
    async with hud(base, key) as http:
        first = await http.post("/tasks/upload", json=upload)
        assert first.status_code == 200, first.text
        assert first.json()["created"] == ["france"]
        again = await http.post("/tasks/upload", json=upload)
        assert again.json()["unchanged"] == ["france"]
        evalset_id = first.json()["evalset_id"]

        reserved = {**upload, "tasks": [{**upload["tasks"][0], "slug": "1234"}]}
        refused = await http.post("/tasks/upload", json=reserved)
        assert refused.status_code == 422
        assert "reserved" in refused.text

        internal = {
            "tasks": [
                {
                    "prompt": "Which city?",
                    "tier": 2,
                    "scenario_id": "my-assistant/answer_question",
                    "scenario_args": [{"name": "query", "value": "Japan?"}],
                    "external_id": "japan",
                    "tags": ["geo"],
                    "env_config": {"exclude": ["search"]},
                }
            ]
        }
        added = await http.post(f"/tasks/evalsets/{evalset_id}/tasks", json=internal)
        assert added.status_code == 200, added.text
        assert added.json()["created"] == ["japan"]

        upstream.plan("claude-opus-4-5", Reply(text="Helpful: Tokyo."))
        callback = {"url": f"{inbox.url}/callback", "metadata": {"ticket": 7}}
        body = {**SEED_CURL_BODY, "evalset_id": evalset_id, "callback": callback}
        run = (await http.post("/agent/run", json=body)).json()
        trace = (await http.get(f"/telemetry/traces/{run['trace_id']}")).json()
        job_id = trace["job_id"]
        assert trace["evalset_id"] == evalset_id

        job = (await http.get(f"/telemetry/job/{job_id}")).json()
        assert job["metrics"]["completed"] == 1
        assert [r["trace_id"] for r in job["runs"]] == [run["trace_id"]]
        assert job["runs"][0]["reward"] == 1.0
        assert job["runs"][0]["duration_seconds"] > 0
        ids = (await http.get(f"/telemetry/job/{job_id}/trace-ids")).json()
        assert ids == {"job_id": job_id, "trace_ids": [run["trace_id"]]}

    delivered = await inbox.first("callback")
    assert delivered["reward"] == 1.0
    assert delivered["metadata"] == {"ticket": 7}


async def test_bad_input_says_what_to_fix(base: str, key: str) -> None:
    async with hud(base, key) as http:
        too_many = await http.post("/agent/run", json={**SEED_CURL_BODY, "max_steps": 501})
        unknown_model = await http.post("/agent/run", json={**SEED_CURL_BODY, "model": "mystery"})
        no_key = await http.post("/agent/run", json=SEED_CURL_BODY, headers={"Authorization": ""})
    assert too_many.status_code == 422
    assert unknown_model.status_code == 422
    assert "provider/model" in unknown_model.text
    assert no_key.status_code == 401


async def test_seed_cron_example_without_a_content_type(
    base: str, key: str, upstream: Upstream
) -> None:
    # `curl -d` sends application/x-www-form-urlencoded; the body is JSON all the same.
    upstream.plan("claude-sonnet-4-5", Reply(text="Cleaned up."))
    cron = b'{"env_name": "ops", "scenario_name": "daily_cleanup", "scenario_args": {}, '
    cron += b'"model": "claude-sonnet-4-5"}'
    form = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(base_url=f"{base}/hud/v1", timeout=120) as http:
        ran = await http.post("/agent/run", content=cron, headers=form)
        assert ran.status_code == 200, ran.text
        assert ran.json()["status"] == "completed"
        bare = {"Authorization": f"Bearer {key}"}
        trace = await http.get(f"/telemetry/traces/{ran.json()['trace_id']}", headers=bare)
        not_json = await http.post("/agent/run", content=b"env_name=ops", headers=form)
        empty = await http.post("/agent/run", headers=bare)
        native = await http.post(f"{base}/v1/runs", content=b"<run/>", headers=bare)
    assert trace.status_code == 200, trace.text
    assert trace.json()["model"] == "claude-sonnet-4-5"
    for refused in (not_json, empty, native):
        assert refused.status_code == 422
        assert "send a JSON object" in refused.json()["detail"][0]["msg"]


async def test_scenario_ids_skip_job_and_every_endpoint_under_v1(
    base: str, key: str, native: httpx.AsyncClient, upstream: Upstream
) -> None:
    upstream.plan("gpt-4o-jobs", *[Reply(text="A helpful answer.") for _ in range(2)])
    async with httpx.AsyncClient(
        base_url=f"{base}/hud/v1", headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as http:
        environments = (await http.get("/environments")).json()
        [assistant] = [env for env in environments if env["name"] == "my-assistant"]
        [scenario] = assistant["scenarios"]
        assert scenario["name"] == "answer_question"
        assert (await http.get("/environments/my-assistant")).json() == assistant

        first = {
            "slug": "first",
            "scenario": "answer_question",
            "args": {"query": "x"},
            "env": {"name": "my-assistant"},
        }
        made = await http.post("/tasks/upload", json={"name": "hud-ids", "tasks": [first]})
        assert made.status_code == 200, made.text
        evalset_id = made.json()["evalset_id"]
        args = [{"name": "query", "value": "helpful?"}]
        task = {"scenario_id": scenario["id"], "external_id": "by-id", "scenario_args": args}
        added = await http.post(f"/tasks/evalsets/{evalset_id}/tasks", json={"tasks": [task]})
        assert added.status_code == 200, added.text
        tasks = (await native.get(f"/v1/tasksets/{evalset_id}")).json()["tasks"]
        [by_id] = [t for t in tasks if t["slug"] == "by-id"]
        assert (by_id["task"]["env"]["name"], by_id["task"]["scenario"]) == (
            "my-assistant",
            "answer_question",
        )
        unknown = {**task, "scenario_id": "00000000-0000-4000-8000-000000000000"}
        refused = await http.post(f"/tasks/evalsets/{evalset_id}/tasks", json={"tasks": [unknown]})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "tasks", 0, "scenario_id"]

        body = {**SEED_CURL_BODY, "model": "gpt-4o-jobs"}
        with_job = (await http.post("/agent/run", json={**body, "skip_job": False})).json()
        job_id = with_job["job_id"]
        ids = (await http.get(f"/telemetry/job/{job_id}/trace-ids")).json()
        assert ids["trace_ids"] == [with_job["trace_id"]]
        assert (await http.get(f"/telemetry/job/{job_id}")).json()["metrics"]["total"] == 1
        skipped = await http.post(
            "/agent/run", json={**body, "evalset_id": evalset_id, "skip_job": True}
        )
        assert "job_id" not in skipped.json()
        trace = (await http.get(f"/telemetry/traces/{skipped.json()['trace_id']}")).json()
        assert (trace["job_id"], trace["evalset_id"]) == (None, evalset_id)
        statuses = await http.post("/telemetry/traces/status", json={"trace_ids": [job_id]})
        assert statuses.json()["traces"][0]["status"] == "not_found"
        full = await http.get(f"/telemetry/trace/{with_job['trace_id']}")
        assert full.status_code == 200, full.text
