"""Sessions: a run that stays open for more user messages until it is closed."""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import answer_step, run_body, wait_for_run


def session_body(*answers: str, **extra: Any) -> dict[str, Any]:
    steps = [answer_step(text) for text in answers or ("Noted.",)]
    return run_body(
        "trivia", "capital", {"country": "Kenya"}, *steps, repeat=True, session=True, **extra
    )


async def open_session(api: httpx.AsyncClient, **extra: Any) -> str:
    response = await api.post("/v1/runs", json=session_body(**extra))
    assert response.status_code == 201, response.text
    run_id: str = response.json()["run_id"]
    await wait_for_run(api, run_id, until={"idle"})
    return run_id


async def user_messages(api: httpx.AsyncClient, run_id: str) -> list[str]:
    events = (await api.get(f"/v1/runs/{run_id}/events", params={"limit": 1000})).json()
    return [
        e["data"]["content"]
        for e in events
        if e["type"] == "message" and e["data"]["role"] == "user" and "message_id" in e["data"]
    ]


async def test_messages_are_answered_once_each_and_close_ends_the_session(
    api: httpx.AsyncClient,
) -> None:
    run_id = await open_session(api)
    first = await api.post(
        f"/v1/runs/{run_id}/messages", json={"message_id": "m-1", "content": "And Peru?"}
    )
    assert first.status_code == 200, first.text
    assert first.json() == {"run_id": run_id, "message_id": "m-1", "duplicate": False}
    again = await api.post(
        f"/v1/runs/{run_id}/messages", json={"message_id": "m-1", "content": "And Peru?"}
    )
    assert again.json()["duplicate"] is True
    run = await wait_for_run(api, run_id, until={"idle"})
    assert run["steps"] == 2

    assert await user_messages(api, run_id) == ["And Peru?"]
    closed = await api.post(f"/v1/runs/{run_id}/close", json={"reason": "done for today"})
    assert closed.status_code == 202
    done = await wait_for_run(api, run_id)
    assert (done["status"], done["stop_reason"], done["torn_down"]) == ("completed", "closed", True)
    late = await api.post(f"/v1/runs/{run_id}/messages", json={"content": "hello?"})
    assert late.status_code == 409


async def test_idle_timeout_ends_the_session(api: httpx.AsyncClient) -> None:
    run_id = await open_session(api, idle_timeout_seconds=1)
    done = await wait_for_run(api, run_id, within=30)
    assert (done["status"], done["stop_reason"]) == ("completed", "idle_timeout")


async def test_jsonrpc_commands(api: httpx.AsyncClient) -> None:
    run_id = await open_session(api)
    sent = await api.post(
        f"/v1/runs/{run_id}/command",
        json={
            "jsonrpc": "2.0",
            "id": 7,
            "method": "user_message",
            "params": {"content": "What about Chile?", "message_id": "rpc-1"},
        },
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["id"] == 7
    assert sent.json()["result"]["message_id"] == "rpc-1"
    await wait_for_run(api, run_id, until={"idle"})
    assert await user_messages(api, run_id) == ["What about Chile?"]

    unknown = await api.post(
        f"/v1/runs/{run_id}/command", json={"jsonrpc": "2.0", "id": 8, "method": "reboot"}
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == -32601
    bad = await api.post(
        f"/v1/runs/{run_id}/command",
        json={"jsonrpc": "2.0", "id": 9, "method": "user_message", "params": {}},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == -32602
    assert "content" in bad.json()["error"]["message"]

    cancel = await api.post(
        f"/v1/runs/{run_id}/command",
        json={"jsonrpc": "2.0", "id": 10, "method": "cancel", "params": {"reason": "bye"}},
    )
    assert cancel.status_code == 200
    done = await wait_for_run(api, run_id)
    assert (done["status"], done["torn_down"]) == ("cancelled", True)


async def test_session_with_simulated_user_is_refused(api: httpx.AsyncClient) -> None:
    body = session_body(user_model="scripted", user_script={"steps": [{"content": "hi"}]})
    response = await api.post("/v1/runs", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "session"]


async def test_a_message_is_answered_once_recorded_not_when_the_turn_ends(
    api: httpx.AsyncClient,
) -> None:
    """The scripted model answers in-process, within the workflow task that took the
    message; the POST still returns as soon as the message is in the conversation."""
    slow_answer = {"content": "Let me think.", "delay_seconds": 3}
    body = run_body(
        "trivia", "capital", {"country": "Kenya"}, slow_answer, repeat=True, session=True
    )
    run_id = (await api.post("/v1/runs", json=body)).json()["run_id"]
    await wait_for_run(api, run_id, until={"idle"}, within=60)

    sent = await api.post(f"/v1/runs/{run_id}/messages", json={"content": "Are you there?"})

    assert sent.status_code == 200, sent.text
    run = (await api.get(f"/v1/runs/{run_id}")).json()
    assert (run["status"], run["steps"]) == ("running", 1)
    assert await user_messages(api, run_id) == ["Are you there?"]
    assert (await wait_for_run(api, run_id, until={"idle"}))["steps"] == 2
    await api.post(f"/v1/runs/{run_id}/close", json={})
