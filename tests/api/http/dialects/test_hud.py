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
    assert trace["model"] == "anthropic/claude-opus-4-5"
    assert "trajectory" not in trace or trace["trajectory"] is None


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
        assert light.get("trajectory") is None
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
