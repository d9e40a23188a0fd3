"""The task-runs dialect at the seed's own paths: every endpoint, and a session run driven
from creation to completion through the dialect alone."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx
import pytest

from tests.api.http.dialects.conftest import Inbox
from tests.harness import sse_events
from tests.upstream import Reply, Upstream

TASK = "fix-login"


@pytest.fixture
async def runs(base: str, key: str, native: httpx.AsyncClient) -> httpx.AsyncClient:
    task = {
        "slug": TASK,
        "scenario": "capital",
        "args": {"country": "Kenya"},
        "env": {"name": "trivia"},
    }
    uploaded = await native.post("/v1/tasksets/upload", json={"name": "repo", "tasks": [task]})
    assert uploaded.status_code == 200, uploaded.text
    return httpx.AsyncClient(
        base_url=f"{base}/task-runs/api/projects/default/tasks/{TASK}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


SESSION = {
    "model": "scripted",
    "script": {"steps": [{"content": "Nairobi."}], "repeat": True},
    "session": True,
    "branch": "fix/login",
    "stage": "triage",
    "state": {"attempt": 1},
}


async def wait_status(runs: httpx.AsyncClient, run_id: str, wanted: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = (await runs.get(f"/runs/{run_id}")).json()
        if run["status"] in wanted:
            return dict(run)
        await asyncio.sleep(0.1)
    raise TimeoutError(f"run {run_id} never reached {wanted}")


async def test_a_session_run_from_create_to_close(runs: httpx.AsyncClient, inbox: Inbox) -> None:
    async with runs:
        created = await runs.post("/runs", json=SESSION)
        assert created.status_code == 201, created.text
        run = created.json()
        run_id = run["id"]
        assert run["task_id"] == TASK
        assert run["project_id"] == "default"
        assert (run["branch"], run["stage"], run["state"]) == (
            "fix/login",
            "triage",
            {"attempt": 1},
        )
        await wait_status(runs, run_id, {"idle"})

        message = {
            "jsonrpc": "2.0",
            "method": "user_message",
            "params": {"content": "Again?"},
            "id": 1,
        }
        answer = await runs.post(f"/runs/{run_id}/command", json=message)
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == 1
        assert answer.json()["result"]["duplicate"] is False
        unknown = await runs.post(f"/runs/{run_id}/command", json={**message, "method": "reboot"})
        assert unknown.status_code == 400
        assert unknown.json()["error"]["code"] == -32601

        patched = await runs.patch(
            f"/runs/{run_id}", json={"stage": "fixing", "state": {"attempt": 2}}
        )
        assert patched.json()["stage"] == "fixing"
        assert patched.json()["state"] == {"attempt": 2}
        refused = await runs.patch(f"/runs/{run_id}", json={"status": "failed"})
        assert refused.status_code == 400
        assert "cannot be set" in refused.text
        invalid = await runs.patch(f"/runs/{run_id}", json={"stage": 5})
        assert invalid.status_code == 400

        logged = await runs.post(
            f"/runs/{run_id}/append_log",
            json={"entries": [{"message": "cloned repo", "level": "info", "step": 1}, {"x": 1}]},
        )
        assert logged.status_code == 200, logged.text
        assert [entry["message"] for entry in logged.json()["log"]] == ["cloned repo", '{"x": 1}']

        content = base64.b64encode(b"diff --git a b").decode()
        upload = {"artifacts": [{"name": "patch.diff", "content_base64": content}]}
        stored = await runs.post(f"/runs/{run_id}/artifacts", json=upload)
        [artifact] = stored.json()["artifacts"]
        signed = await runs.post(
            f"/runs/{run_id}/artifacts/presign", json={"storage_path": artifact["storage_path"]}
        )
        assert signed.status_code == 200, signed.text
        async with httpx.AsyncClient() as anyone:
            assert (await anyone.get(signed.json()["url"])).content == b"diff --git a b"
        missing = await runs.post(
            f"/runs/{run_id}/artifacts/presign", json={"storage_path": "nope"}
        )
        assert missing.status_code == 404

        output = await runs.patch(
            f"/runs/{run_id}/set_output", json={"output": {"pr": "https://x/1"}}
        )
        assert output.json()["output"] == {"pr": "https://x/1"}

        relayed = await runs.post(f"/runs/{run_id}/relay_message", json={"text": "PR is up"})
        assert relayed.status_code == 200, relayed.text

        token = (await runs.get(f"/runs/{run_id}/connection_token")).json()
        assert token["run_id"] == run_id

        close = {"jsonrpc": "2.0", "method": "close", "params": {}, "id": "c"}
        assert (await runs.post(f"/runs/{run_id}/command", json=close)).status_code == 200
        done = await wait_status(runs, run_id, {"completed", "failed", "cancelled"})
        assert done["status"] == "completed"
        assert done["reward"] == 1.0
        late = await runs.post(f"/runs/{run_id}/command", json=message)
        assert late.status_code == 400

        # The connection token alone reads the stream, which ends with the run.
        stream_url = f"{runs.base_url}runs/{run_id}/stream"
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token['token']}"}) as tok:
            events = [e async for e in sse_events(tok, stream_url) if e.event != ":"]
        assert events[-1].event == "end"
        assert '"completed"' in events[-2].data

        lines = (await runs.get(f"/runs/{run_id}/logs")).text.splitlines()
        assert [json.loads(line)["data"]["message"] for line in lines] == [
            "cloned repo",
            '{"x": 1}',
        ]
        statuses = await runs.get(
            f"/runs/{run_id}/session_logs", params={"event_types": "status", "limit": 2}
        )
        assert [e["type"] for e in statuses.json()] == ["status", "status"]
        no_logs = await runs.get(f"/runs/{run_id}/session_logs", params={"exclude_types": "log"})
        assert all(e["type"] != "log" for e in no_logs.json())

        listed = (await runs.get("/runs", params={"limit": 50})).json()
        assert run_id in [r["id"] for r in listed["results"]]

    relayed_message = await inbox.first("relay")
    assert relayed_message["text"] == "PR is up"
    assert relayed_message["run_id"] == run_id


async def test_wrong_project_missing_task_and_missing_model(
    base: str, key: str, runs: httpx.AsyncClient
) -> None:
    async with runs:
        no_model = await runs.post("/runs")
        assert no_model.status_code == 400
        assert "which model" in no_model.text
        assert "agent_config.model" in no_model.text
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
        other = await http.get(f"{base}/task-runs/api/projects/other/tasks/{TASK}/runs")
        assert other.status_code == 404
        unknown = await http.get(f"{base}/task-runs/api/projects/default/tasks/nope/runs")
        assert unknown.status_code == 404


async def test_the_seeds_create_without_a_body_runs_the_tasks_own_model(
    base: str, key: str, native: httpx.AsyncClient, upstream: Upstream
) -> None:
    task = {
        "slug": "own-model",
        "scenario": "capital",
        "args": {"country": "Kenya"},
        "env": {"name": "trivia"},
        "agent_config": {"model": "openai/gpt-4o-task"},
    }
    uploaded = await native.post("/v1/tasksets/upload", json={"name": "owned", "tasks": [task]})
    assert uploaded.status_code == 200, uploaded.text
    vague = {**task, "slug": "vague", "agent_config": {"model": "llama-3"}}
    refused = await native.post("/v1/tasksets/upload", json={"name": "owned", "tasks": [vague]})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "tasks", 0, "agent_config", "model"]
    upstream.plan("gpt-4o-task", Reply(text="Nairobi."))
    async with httpx.AsyncClient(
        base_url=f"{base}/task-runs/api/projects/default/tasks/own-model",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    ) as runs:
        created = await runs.post("/runs")
        assert created.status_code == 201, created.text
        done = await wait_status(runs, created.json()["id"], {"completed", "failed"})
    assert (done["status"], done["answer"]) == ("completed", "Nairobi.")
    assert len(upstream.requests["gpt-4o-task"]) == 1
