"""A session of 1,000 messages continues as new at idle points and loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.harness import Stack, answer_step, run_body, wait_for_run

MESSAGES = 1000
HISTORY_LIMIT = 200
SENDERS = 8


@pytest.fixture
async def small_history_stack(temporal_address: str, tmp_path: Path) -> AsyncIterator[Stack]:
    stack = Stack(
        temporal_address=temporal_address,
        workdir=tmp_path,
        extra_env={"LOOPLINE_SESSION_HISTORY_LIMIT": str(HISTORY_LIMIT)},
    )
    stack.start_worker()
    await stack.start_api()
    yield stack
    stack.stop()


async def test_thousand_messages_keep_history_bounded(
    small_history_stack: Stack, temporal_client: Client
) -> None:
    body = run_body(
        "trivia", "capital", {"country": "Kenya"}, answer_step("Noted."), repeat=True, session=True
    )
    async with small_history_stack.client(timeout=60) as api:
        run_id = (await api.post("/v1/runs", json=body)).json()["run_id"]
        await wait_for_run(api, run_id, until={"idle"})
        pending = iter(range(MESSAGES))

        async def sender() -> list[bool]:
            duplicates = []
            for n in pending:
                sent = await api.post(
                    f"/v1/runs/{run_id}/messages",
                    json={"message_id": f"m-{n}", "content": f"message {n}"},
                )
                assert sent.status_code == 200, sent.text
                duplicates.append(sent.json()["duplicate"])
            return duplicates

        acks = await asyncio.gather(*(sender() for _ in range(SENDERS)))
        assert not any(flag for flags in acks for flag in flags)
        # Ids sent before earlier hops are still known: re-sending is not queued again.
        for n in (0, 1, MESSAGES - 1):
            resent = await api.post(
                f"/v1/runs/{run_id}/messages",
                json={"message_id": f"m-{n}", "content": f"message {n}"},
            )
            assert resent.json()["duplicate"] is True
        await wait_for_run(api, run_id, until={"idle"}, within=120)
        assert (await api.post(f"/v1/runs/{run_id}/close")).status_code == 202
        done = await wait_for_run(api, run_id, within=60)
        assert (done["status"], done["stop_reason"]) == ("completed", "closed")
        events = (await api.get(f"/v1/runs/{run_id}/events", params={"limit": 1000})).json()
        after = events[-1]["seq"]
        while page := (
            await api.get(f"/v1/runs/{run_id}/events", params={"after": after, "limit": 1000})
        ).json():
            events += page
            after = page[-1]["seq"]

    delivered = [e["data"]["message_id"] for e in events if "message_id" in e["data"]]
    assert sorted(delivered) == sorted(f"m-{n}" for n in range(MESSAGES))

    lengths = []
    async for execution in temporal_client.list_workflows(f"WorkflowId = 'run-{run_id}'"):
        history = await temporal_client.get_workflow_handle(
            execution.id, run_id=execution.run_id
        ).fetch_history()
        lengths.append(len(history.events))
    assert len(lengths) >= 5, "the session should have continued as new several times"
    # Each run stops at the first idle point past the limit: one turn's worth of events more.
    assert max(lengths) < HISTORY_LIMIT + 150, lengths
