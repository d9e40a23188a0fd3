"""Client-side tools: the run suspends (awaiting_input) until the caller continues it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import answer_step, run_body, tool_step, wait_for_run

READ_FILE = {
    "name": "read_file",
    "description": "Read a file from the caller's workspace.",
    "parameters": {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
    },
}


def client_tool_body(**extra: Any) -> dict[str, Any]:
    return run_body(
        "trivia",
        "capital",
        {"country": "Kenya"},
        tool_step("read_file", path="notes/kenya.txt"),
        tool_step("lookup", topic="Kenya"),
        answer_step("The capital city of Kenya is Nairobi."),
        client_tools=[READ_FILE],
        **extra,
    )


async def suspended(api: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    response = await api.post("/v1/runs", json=client_tool_body(**extra))
    assert response.status_code == 201, response.text
    return await wait_for_run(api, response.json()["run_id"], until={"awaiting_input"})


async def test_suspend_continue_complete(api: httpx.AsyncClient) -> None:
    run = await suspended(api)
    [call] = run["pending_tool_calls"]
    assert call["name"] == "read_file"
    assert call["arguments"] == {"path": "notes/kenya.txt"}

    answer = {"call_id": call["id"], "content": "Kenya: capital Nairobi (since 1963)."}
    response = await api.post(f"/v1/runs/{run['run_id']}/continue", json={"tool_results": [answer]})
    assert response.status_code == 200, response.text
    assert response.json()["pending_tool_calls"] is None

    done = await wait_for_run(api, run["run_id"])
    assert done["status"] == "completed"
    assert done["reward"] == 1.0
    trajectory = (await api.get(f"/v1/runs/{run['run_id']}/events")).json()
    tool_messages = [e["data"] for e in trajectory if e["data"].get("role") == "tool"]
    assert tool_messages[0]["tool_call_id"] == call["id"]
    assert tool_messages[0]["content"] == answer["content"]
    statuses = [e["data"]["status"] for e in trajectory if e["type"] == "status"]
    assert statuses == ["awaiting_input", "running", "completed"]


async def test_wrong_call_ids_are_refused_and_change_nothing(api: httpx.AsyncClient) -> None:
    run = await suspended(api)
    run_id = run["run_id"]
    [call] = run["pending_tool_calls"]
    before = (await api.get(f"/v1/runs/{run_id}/events")).json()

    unknown = await api.post(
        f"/v1/runs/{run_id}/continue",
        json={"tool_results": [{"call_id": "call_nope", "content": "x"}]},
    )
    assert unknown.status_code == 422
    message = unknown.json()["detail"][0]["msg"]
    assert "call_nope" in message and f"missing results for {call['id']}" in message

    twice = await api.post(
        f"/v1/runs/{run_id}/continue",
        json={
            "tool_results": [
                {"call_id": call["id"], "content": "a"},
                {"call_id": call["id"], "content": "b"},
            ]
        },
    )
    assert twice.status_code == 422
    assert "given twice" in twice.json()["detail"][0]["msg"]

    assert (await api.get(f"/v1/runs/{run_id}/events")).json() == before
    assert (await api.get(f"/v1/runs/{run_id}")).json()["status"] == "awaiting_input"

    right = {"tool_results": [{"call_id": call["id"], "content": "fine"}]}
    assert (await api.post(f"/v1/runs/{run_id}/continue", json=right)).status_code == 200
    assert (await wait_for_run(api, run_id))["status"] == "completed"
    again = await api.post(f"/v1/runs/{run_id}/continue", json=right)
    assert again.status_code == 409


async def test_continue_while_not_waiting_is_a_conflict(api: httpx.AsyncClient) -> None:
    body = client_tool_body(session=True)
    body["script"]["steps"] = [answer_step("Ask me anything.")]
    response = await api.post("/v1/runs", json=body)
    run_id = response.json()["run_id"]
    await wait_for_run(api, run_id, until={"idle"})
    refused = await api.post(
        f"/v1/runs/{run_id}/continue", json={"tool_results": [{"call_id": "x", "content": ""}]}
    )
    assert refused.status_code == 409
    assert "not waiting for tool results" in refused.json()["detail"]
    await api.post(f"/v1/runs/{run_id}/close")
    assert (await wait_for_run(api, run_id))["stop_reason"] == "closed"


async def test_input_timeout_ends_the_wait(api: httpx.AsyncClient) -> None:
    run = await suspended(api, input_timeout_seconds=1)
    done = await wait_for_run(api, run["run_id"], within=30)
    assert done["status"] == "completed"
    assert done["stop_reason"] == "input_timeout"


async def test_cancel_while_awaiting_input_tears_down(api: httpx.AsyncClient) -> None:
    run = await suspended(api)
    response = await api.post(f"/v1/runs/{run['run_id']}/cancel", json={"reason": "user left"})
    assert response.status_code == 202
    done = await wait_for_run(api, run["run_id"])
    assert (done["status"], done["torn_down"]) == ("cancelled", True)


async def test_bad_client_tools_are_refused(api: httpx.AsyncClient) -> None:
    clash = client_tool_body()
    clash["client_tools"] = [{**READ_FILE, "name": "lookup"}]
    response = await api.post("/v1/runs", json=clash)
    assert response.status_code == 422
    assert "already has a tool 'lookup'" in response.json()["detail"][0]["msg"]

    not_object = client_tool_body()
    not_object["client_tools"] = [{**READ_FILE, "parameters": {"type": "string"}}]
    response = await api.post("/v1/runs", json=not_object)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "client_tools", 0, "parameters"]
