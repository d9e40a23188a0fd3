"""Events as JSON with filters, and as a live SSE stream that resumes without gaps."""

from __future__ import annotations

import json
from datetime import datetime

import httpx

from tests.activities.providers.test_openai_chat import PERU, gpt
from tests.harness import (
    answer_step,
    model_body,
    run_body,
    run_to_end,
    sse_events,
    tool_step,
    wait_for_run,
)
from tests.upstream import Reply, Upstream


def slow_run(tickets: int = 6) -> dict[str, object]:
    steps = [
        tool_step("open_ticket", 0.15, order_id="A-1002", subject=f"note {n}")
        for n in range(1, tickets + 1)
    ]
    return run_body(
        "orders",
        "refund_damaged",
        {"customer": "ada", "order_id": "A-1002"},
        *steps,
        answer_step("Logged."),
    )


async def test_reconnect_with_last_event_id_gets_every_event_once(api: httpx.AsyncClient) -> None:
    run_id = (await api.post("/v1/runs", json=slow_run())).json()["run_id"]
    received: list[int] = []
    async for event in sse_events(api, f"/v1/runs/{run_id}/events"):
        if event.id is not None:
            received.append(int(event.id))
        if len(received) == 4:
            break  # the client drops the connection mid-run
    run = (await api.get(f"/v1/runs/{run_id}")).json()
    assert run["status"] == "running", "the run should still be going when the client drops"

    ended = None
    async for event in sse_events(
        api, f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": str(received[-1])}
    ):
        if event.event == "end":
            ended = json.loads(event.data)
            break
        if event.id is not None:
            received.append(int(event.id))
    recorded = (await api.get(f"/v1/runs/{run_id}/events", params={"limit": 1000})).json()
    assert received == [event["seq"] for event in recorded]
    assert ended == {"last_seq": recorded[-1]["seq"]}
    assert recorded[-1]["data"]["status"] == "completed"


async def test_stream_of_an_ended_run_replays_and_ends(api: httpx.AsyncClient) -> None:
    run = await run_to_end(api, slow_run(tickets=1))
    names = [e.event async for e in sse_events(api, f"/v1/runs/{run['run_id']}/events", after=2)]
    assert names[-1] == "end"
    recorded = (await api.get(f"/v1/runs/{run['run_id']}/events", params={"after": 2})).json()
    assert names[:-1] == [event["type"] for event in recorded]


async def test_stream_filters_and_keeps_alive(api: httpx.AsyncClient) -> None:
    body = slow_run(tickets=1)
    body["session"] = True
    run_id = (await api.post("/v1/runs", json=body)).json()["run_id"]
    await wait_for_run(api, run_id, until={"idle"})
    seen = []
    async for event in sse_events(api, f"/v1/runs/{run_id}/events", event_types="status"):
        seen.append(event)
        if event.event == ":":
            break  # idle: nothing to send but keep-alives (every second in tests)
    assert {e.event for e in seen} == {"status", ":"}
    await api.post(f"/v1/runs/{run_id}/close")
    await wait_for_run(api, run_id)


async def test_event_filters(api: httpx.AsyncClient) -> None:
    run = await run_to_end(api, slow_run(tickets=2))
    path = f"/v1/runs/{run['run_id']}/events"
    everything = (await api.get(path)).json()
    only_status = (await api.get(path, params={"event_types": "status,reward"})).json()
    assert {e["type"] for e in only_status} == {"status", "reward"}
    no_messages = (await api.get(path, params={"exclude_types": "message"})).json()
    assert len(no_messages) + sum(e["type"] == "message" for e in everything) == len(everything)
    middle = datetime.fromisoformat(everything[3]["created_at"])
    later = (await api.get(path, params={"since": middle.isoformat()})).json()
    assert all(datetime.fromisoformat(e["created_at"]) > middle for e in later)
    assert later and later[-1] == everything[-1]
    bad = await api.get(path, params={"event_types": "messages"})
    assert bad.status_code == 422
    assert "unknown event type messages" in bad.json()["detail"][0]["msg"]


async def test_streamed_model_text_arrives_as_delta_events(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = gpt(upstream)
    answer = " ".join(f"word{n}" for n in range(60))
    upstream.plan(model["model"], Reply(text=answer, chunk_delay=0.05))
    run_id = (await api.post("/v1/runs", json=model_body(model, PERU))).json()["run_id"]
    deltas: list[dict[str, object]] = []
    async for event in sse_events(api, f"/v1/runs/{run_id}/events"):
        if event.event == "end":
            break
        if event.event == "delta":
            assert event.id is None, "live text must not move the resume point"
            deltas.append(json.loads(event.data))
    assert len(deltas) >= 2, "text streamed for 3 s should come in several coalesced pieces"
    text = "".join(str(delta["text"]) for delta in deltas)
    assert answer.endswith(text)
    assert {(delta["step"], delta["purpose"]) for delta in deltas} == {(1, "agent")}
