"""Anthropic Messages through the real `anthropic` SDK, in a real worker, against a local
server that speaks the wire format (tests/upstream.py)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.harness import model_body, run_to_end
from tests.upstream import Failure, Reply, Upstream

PERU = {"country": "Peru"}


def claude(upstream: Upstream, **config: Any) -> dict[str, Any]:
    return {
        "model": f"claude-sonnet-4-5-{uuid.uuid4().hex[:8]}",
        "provider": "anthropic",
        "base_url": upstream.anthropic_url,
        "api_key": "sk-ant-test",
        "temperature": 0.3,
        **config,
    }


@pytest.mark.parametrize("stream", [True, False])
async def test_tool_use_blocks_and_results_round_trip(
    api: httpx.AsyncClient, upstream: Upstream, stream: bool
) -> None:
    model = claude(upstream, stream=stream)
    upstream.plan(
        model["model"],
        Reply(
            text="Let me look both up.",
            tool_calls=[("lookup", '{"topic": "Japan"}'), ("lookup", '{"topic": "Peru"}')],
            prompt_tokens=1000,
            output_tokens=40,
        ),
        Reply(text="The capital of Peru is Lima.", prompt_tokens=1500, output_tokens=60),
    )
    run = await run_to_end(api, model_body(model, PERU))

    assert run["status"] == "completed" and run["reward"] == 1.0, run
    assert run["answer"] == "The capital of Peru is Lima."
    # claude-sonnet-4-5: $3 in, $15 out per million tokens
    assert run["usage"]["prompt_tokens"] == 2500 and run["usage"]["completion_tokens"] == 100
    assert run["usage"]["cost_usd"] == pytest.approx(2500 * 3e-6 + 100 * 15e-6)

    first, second = upstream.requests[model["model"]]
    # SDK versions differ: x-api-key, or Authorization: Bearer.
    credentials = first.headers.get("x-api-key", "") + first.headers.get("authorization", "")
    assert "sk-ant-test" in credentials
    assert first.body["system"].startswith("Answer with the help of the tools")
    assert first.body["max_tokens"] == 4096 and first.body["temperature"] == 0.3
    assert {tool["name"] for tool in first.body["tools"]} == {
        "lookup",
        "calculator",
        "submit_answer",
    }
    assert "input_schema" in first.body["tools"][0]
    user, assistant, results = second.body["messages"]
    assert user == {"role": "user", "content": [{"type": "text", "text": PROMPT}]}
    assert [block["type"] for block in assistant["content"]] == ["text", "tool_use", "tool_use"]
    assert assistant["content"][2]["input"] == {"topic": "Peru"}
    # Both results ride in one user turn, in call order.
    assert results["role"] == "user"
    assert [(b["type"], b["tool_use_id"], b["content"]) for b in results["content"]] == [
        ("tool_result", "toolu_0", "Japan: capital city Tokyo."),
        ("tool_result", "toolu_1", "Peru: capital city Lima."),
    ]


PROMPT = "What is the capital city of Peru?"


async def test_overloaded_then_success(api: httpx.AsyncClient, upstream: Upstream) -> None:
    model = claude(upstream)
    upstream.plan(
        model["model"],
        Failure(529, "Overloaded", {"retry-after": "1"}),
        Reply(text="Lima."),
    )
    run = await run_to_end(api, model_body(model, PERU))

    assert run["status"] == "completed" and run["reward"] == 1.0
    assert len(upstream.requests[model["model"]]) == 2


async def test_unknown_model_fails_at_once(api: httpx.AsyncClient, upstream: Upstream) -> None:
    model = claude(upstream)
    upstream.plan(model["model"], Failure(404, f"model: {model['model']} not found"))
    run = await run_to_end(api, model_body(model, PERU))

    assert run["status"] == "failed"
    assert "404" in run["error"] and "not found" in run["error"]
    assert len(upstream.requests[model["model"]]) == 1


async def test_system_prompt_override(api: httpx.AsyncClient, upstream: Upstream) -> None:
    model = claude(upstream, system_prompt="You are terse.")
    upstream.plan(model["model"], Reply(text="Lima."))
    await run_to_end(api, model_body(model, PERU))

    assert upstream.requests[model["model"]][0].body["system"] == "You are terse."
