"""An environment whose tools came with their own schemas (OpenAI and MCP tool formats),
served by the shared stack through LOOPLINE_EXTRA_ENVIRONMENT_MODULES beside the built-in
environments."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.harness import answer_step, run_body, run_to_end, sse_events, tool_step
from tests.servers.wrapped_environments import BALANCE_SCHEMA, TRANSFER_SCHEMA


async def test_tools_from_schemas_run_with_checked_arguments_and_say_their_keys(
    api: httpx.AsyncClient,
) -> None:
    listed = {env["name"]: env for env in (await api.get("/v1/environments")).json()}
    assert {"chat", "orders", "trivia", "wrapped"} <= set(listed)
    tools = {tool["name"]: tool for tool in listed["wrapped"]["tools"]}
    assert tools["transfer"]["parameters"] == TRANSFER_SCHEMA["function"]["parameters"]
    assert tools["transfer"]["description"] == "Move money between two accounts."
    assert tools["balance"]["parameters"] == BALANCE_SCHEMA["inputSchema"]
    name = f"wrapped-{uuid.uuid4().hex[:6]}"
    task = {"slug": "pay", "scenario": "pay", "args": {"amount": 4}, "env": {"name": "wrapped"}}
    uploaded = await api.post("/v1/tasksets/upload", json={"name": name, "tasks": [task]})
    assert uploaded.status_code == 200, uploaded.text
    body = run_body(
        "wrapped",
        "pay",
        {"amount": 4},
        tool_step("transfer", source="alice", target="bob", amount="four"),
        tool_step("transfer", source="alice", target="bob", amount=4),
        tool_step("balance", account="bob"),
        answer_step("Paid."),
        taskset=name,
    )

    run = await run_to_end(api, body)

    assert run["status"] == "completed" and run["reward"] == 1.0, run
    assert run["reward_details"] == {
        "transfers": 1,
        "run_id": run["run_id"],
        "task": run["task"],
        "taskset_id": uploaded.json()["taskset_id"],
    }
    events = (await api.get(f"/v1/runs/{run['run_id']}/events")).json()
    results = [e["data"] for e in events if e["data"].get("role") == "tool"]
    assert (
        results[0]["is_error"]
        and "amount: 'four' is not of type 'integer'" in (results[0]["content"])
    )
    assert [r["content"] for r in results[1:]] == ["moved 4 from alice to bob", "4"]
    calls = [e["data"]["tool_calls"][0]["id"] for e in events if e["data"].get("tool_calls")]
    keys = [e["key"] for e in events if e["data"].get("role") in ("assistant", "tool")]
    assert keys[:2] == ["step-1:model", f"step-1:tool:{calls[0]}"]
    assert keys[-1] == "step-4:model"
    streamed = [
        json.loads(e.data)["key"]
        async for e in sse_events(api, f"/v1/runs/{run['run_id']}/events")
        if e.id is not None
    ]
    assert streamed == [e["key"] for e in events]
