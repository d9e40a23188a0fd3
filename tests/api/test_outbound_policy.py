"""A `task:write` key cannot make Loopline request what the outbound URL policy denies:
a literal denied address is refused at the request, a name that resolves into a denied
range fails the delivery or the model call, and nothing reaches the server behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from tests.harness import Stack, answer_step, free_port, run_body, run_to_end, serving

PERU = {"country": "Peru"}


@pytest.fixture
async def strict_stack(temporal_address: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """A worker and an API with the policy's defaults (the harness allows loopback)."""
    stack = Stack(
        temporal_address=temporal_address,
        workdir=tmp_path,
        extra_env={"LOOPLINE_OUTBOUND_ALLOW": ""},
    )
    stack.start_worker()
    await stack.start_api()
    yield stack
    stack.stop()


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        (
            {"callback": {"url": "http://127.0.0.1:7243/api/v1/namespaces"}},
            ["body", "callback", "url"],
            "a loopback address",
        ),
        (
            {
                "model": {
                    "model": "m",
                    "provider": "custom",
                    "base_url": "http://169.254.169.254/v1",
                }
            },
            ["body", "model", "base_url"],
            "a link-local address",
        ),
        (
            {
                "model": {
                    "model": "m",
                    "provider": "openai",
                    "tool_server_url": "http://10.0.0.7:9000",
                }
            },
            ["body", "model", "tool_server_url"],
            "a private address",
        ),
    ],
)
async def test_a_literal_denied_address_is_a_422(
    strict_stack: Stack, change: dict[str, Any], where: list[str], says: str
) -> None:
    body = {**run_body("trivia", "capital", PERU, answer_step("Lima")), **change}
    async with strict_stack.client() as api:
        response = await api.post("/v1/runs", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == where
    assert "blocked by the outbound URL policy" in detail["msg"] and says in detail["msg"]
    assert "LOOPLINE_OUTBOUND_ALLOW" in detail["msg"]


async def test_a_name_resolving_to_loopback_reaches_nothing(strict_stack: Stack) -> None:
    reached: list[str] = []
    behind = FastAPI()

    @behind.post("/{path:path}")
    async def anything(path: str, request: Request) -> dict[str, str]:
        reached.append(path)
        return {"id": "x"}

    port = free_port()
    callback = {"url": f"http://localhost:{port}/hook", "retry_count": 3}
    delivered = run_body("trivia", "capital", PERU, answer_step("Lima"), callback=callback)
    model = {"model": "m", "provider": "custom", "base_url": f"http://localhost:{port}/v1"}
    called = {
        **run_body("trivia", "capital", PERU, answer_step("x")),
        "model": model,
        "script": None,
    }
    async with serving(behind, port), strict_stack.client() as api:
        with_callback = await run_to_end(api, delivered)
        while (with_callback["callback"] or {}).get("status") in {"pending", "retrying"}:
            await asyncio.sleep(0.1)
            with_callback = (await api.get(f"/v1/runs/{with_callback['run_id']}")).json()
        with_model = await run_to_end(api, called, within=60)

    assert with_callback["status"] == "completed"
    assert with_callback["callback"]["status"] == "failed"
    assert with_callback["callback"]["attempts"] == 1, "a blocked delivery is not retried"
    assert "blocked by the outbound URL policy" in with_callback["callback"]["error"]
    assert with_model["status"] == "failed"
    assert "blocked by the outbound URL policy" in with_model["error"]
    assert reached == []
