"""Completion callbacks: signed, retried with backoff, the outcome kept on the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from activities.callbacks import DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature
from tests.harness import answer_step, free_port, run_body, run_to_end, serving

SECRET = "whsec-test-1234"


@dataclass
class Receiver:
    """A webhook endpoint that answers 500 to its first `failures` deliveries."""

    failures: int
    port: int = field(default_factory=free_port)
    deliveries: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            status = 500 if len(self.deliveries) < self.failures else 200
            self.deliveries.append((status, dict(request.headers), await request.body()))
            return Response(status_code=status)

        return app


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver(failures=2)
    async with serving(hook.app(), hook.port):
        yield hook


async def test_a_receiver_that_fails_twice_gets_one_accepted_signed_delivery(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    callback = {
        "url": receiver.url,
        "retry_count": 3,
        "include_trajectory": True,
        "headers": {"Authorization": "Bearer receiver-token-5678"},
        "metadata": {"ticket": "OPS-12"},
        "secret": SECRET,
    }
    body = run_body(
        "trivia", "capital", {"country": "Peru"}, answer_step("Lima"), callback=callback
    )

    run = await run_to_end(api, body)
    deadline = time.monotonic() + 30
    while (run["callback"] or {}).get("status") != "delivered":
        assert time.monotonic() < deadline, run["callback"]
        await asyncio.sleep(0.2)
        run = (await api.get(f"/v1/runs/{run['run_id']}")).json()

    assert [status for status, _, _ in receiver.deliveries] == [500, 500, 200]
    _, headers, payload = receiver.deliveries[-1]
    assert verify_signature(SECRET.encode(), headers[SIGNATURE_HEADER.lower()], payload)
    assert not verify_signature(b"another key", headers[SIGNATURE_HEADER.lower()], payload)
    assert headers[DELIVERY_HEADER.lower()] == run["run_id"]
    assert headers["authorization"] == "Bearer receiver-token-5678"
    sent: dict[str, Any] = httpx.Response(200, content=payload).json()
    assert sent["reward"] == 1.0 and sent["response"] == "Lima"
    assert sent["metadata"] == {"ticket": "OPS-12"}
    assert any(event["type"] == "message" for event in sent["trajectory"])
    assert run["callback"]["attempts"] == 3 and run["callback"]["status_code"] == 200

    events = (await api.get(f"/v1/runs/{run['run_id']}/events")).json()
    assert [e["data"]["status"] for e in events if e["type"] == "callback"] == [
        "retrying",
        "retrying",
        "delivered",
    ]
    assert "receiver-token-5678" not in str(run) and "receiver-token-5678" not in str(events)


async def test_a_receiver_that_never_accepts_leaves_the_run_completed(
    api: httpx.AsyncClient,
) -> None:
    hook = Receiver(failures=100)
    async with serving(hook.app(), hook.port):
        callback = {"url": hook.url, "retry_count": 1}
        body = run_body(
            "trivia", "capital", {"country": "Peru"}, answer_step("Lima"), callback=callback
        )
        run = await run_to_end(api, body)
        deadline = time.monotonic() + 30
        while (run["callback"] or {}).get("status") != "failed":
            assert time.monotonic() < deadline, run["callback"]
            await asyncio.sleep(0.2)
            run = (await api.get(f"/v1/runs/{run['run_id']}")).json()

    assert run["status"] == "completed" and run["reward"] == 1.0
    assert len(hook.deliveries) == 2 and run["callback"]["error"].startswith("HTTP 500")
