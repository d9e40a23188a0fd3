"""OpenAI Chat Completions through the real `openai` SDK, in a real worker, against a local
server that speaks the wire format (tests/upstream.py)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from tests.harness import model_body, run_to_end
from tests.upstream import Failure, Reply, Upstream
from workflows.contract.payloads import TOKENS_TOPIC, TokenDelta

PERU = {"country": "Peru"}
LOOKUP_PERU = ("lookup", '{"topic": "Peru"}')


def gpt(upstream: Upstream, **config: Any) -> dict[str, Any]:
    # A dated name: priced as gpt-4o by the longest known prefix.
    name = f"gpt-4o-{uuid.uuid4().hex[:8]}"
    return {
        "model": name,
        "provider": "custom",
        "base_url": upstream.openai_url,
        "api_key": "sk-test",
        **config,
    }


async def trajectory(api: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/runs/{run_id}", params={"include_trajectory": True})
    return [event["data"] for event in response.json()["trajectory"]]


async def test_tool_call_then_answer_with_usage_and_cost(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = gpt(upstream, stream=False, temperature=0.2, max_tokens=300)
    upstream.plan(
        model["model"],
        Reply(tool_calls=[LOOKUP_PERU], prompt_tokens=1000, output_tokens=50),
        Reply(text="The capital of Peru is Lima.", prompt_tokens=2000, output_tokens=100),
    )
    run = await run_to_end(api, model_body(model, PERU))

    assert run["status"] == "completed", run
    assert run["stop_reason"] == "answered" and run["reward"] == 1.0
    assert run["model"] == f"custom/{model['model']}"
    usage = run["usage"]
    assert (usage["model_calls"], usage["prompt_tokens"], usage["completion_tokens"]) == (
        2,
        3000,
        150,
    )
    # gpt-4o: $2.50 in, $10.00 out per million tokens
    assert usage["cost_usd"] == pytest.approx(3000 * 2.5e-6 + 150 * 10e-6)
    assert usage["unpriced_calls"] == 0

    first, second = upstream.requests[model["model"]]
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.body["temperature"] == 0.2 and first.body["max_tokens"] == 300
    tools = {tool["function"]["name"]: tool["function"] for tool in first.body["tools"]}
    assert set(tools) == {"lookup", "calculator", "submit_answer"}
    assert tools["lookup"]["parameters"]["required"] == ["topic"]
    assert [m["role"] for m in first.body["messages"]] == ["system", "user"]
    assert [m["role"] for m in second.body["messages"]] == ["system", "user", "assistant", "tool"]
    call = second.body["messages"][2]["tool_calls"][0]
    assert call["function"] == {"name": "lookup", "arguments": '{"topic": "Peru"}'}
    assert second.body["messages"][3] == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": "Peru: capital city Lima.",
    }
    model_events = [e for e in await trajectory(api, run["run_id"]) if "finish_reason" in e]
    assert [e["finish_reason"] for e in model_events] == ["tool_calls", "stop"]
    assert all(e["provider_latency_ms"] > 0 for e in model_events)


async def test_parallel_tool_calls_all_run_and_return_in_order(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = gpt(upstream)
    upstream.plan(
        model["model"],
        Reply(tool_calls=[("lookup", '{"topic": "Japan"}'), LOOKUP_PERU]),
        Reply(text="Lima."),
    )
    run = await run_to_end(api, model_body(model, PERU))

    assert run["status"] == "completed" and run["reward"] == 1.0
    first, second = upstream.requests[model["model"]]
    # Unset, the server's default holds (parallel, for OpenAI's API).
    assert "parallel_tool_calls" not in first.body
    results = [m for m in second.body["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in results] == [
        "Japan: capital city Tokyo.",
        "Peru: capital city Lima.",
    ]
    calls = second.body["messages"][2]["tool_calls"]
    assert [m["tool_call_id"] for m in results] == [c["id"] for c in calls]


async def test_streamed_tokens_reach_subscribers_in_coalesced_batches(
    api: httpx.AsyncClient, upstream: Upstream, temporal_client: Client
) -> None:
    model = gpt(upstream)
    answer = " ".join(["Lima"] * 400)
    upstream.plan(model["model"], Reply(text=answer))
    run = await run_to_end(api, model_body(model, PERU))
    assert run["status"] == "completed" and run["answer"] == answer

    stream = WorkflowStreamClient.create(temporal_client, run["workflow_id"])
    deltas: list[TokenDelta] = []
    async for item in stream.subscribe([TOKENS_TOPIC], result_type=TokenDelta):
        deltas.append(item.data)
        if "".join(d.text for d in deltas) == answer:
            break
    assert {(d.step, d.purpose) for d in deltas} == {(1, "agent")}
    # 400 streamed pieces arrive in far fewer publish signals.
    history = await temporal_client.get_workflow_handle(run["workflow_id"]).fetch_history()
    signals = [
        e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert 1 <= len(signals) <= 20


async def test_rate_limit_waits_for_retry_after_then_succeeds(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = gpt(upstream)
    upstream.plan(
        model["model"],
        Failure(429, "Rate limit reached for requests", {"retry-after": "3"}),
        Reply(text="Lima."),
    )
    run = await run_to_end(api, model_body(model, PERU))

    assert run["status"] == "completed" and run["reward"] == 1.0
    limited, retried = upstream.requests[model["model"]]
    # Temporal's own first retry would come after 1 s; the provider asked for 3.
    assert retried.at - limited.at >= 2.9


async def test_server_error_is_retried(api: httpx.AsyncClient, upstream: Upstream) -> None:
    model = gpt(upstream)
    upstream.plan(model["model"], Failure(500, "upstream exploded"), Reply(text="Lima."))
    run = await run_to_end(api, model_body(model, PERU))

    assert run["status"] == "completed" and run["reward"] == 1.0
    assert len(upstream.requests[model["model"]]) == 2


async def test_bad_key_fails_the_run_at_once_with_the_providers_message(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = gpt(upstream)
    upstream.plan(model["model"], Failure(401, "Incorrect API key provided"))
    run = await run_to_end(api, model_body(model, PERU))

    assert run["status"] == "failed" and run["stop_reason"] == "error"
    assert "401" in run["error"] and "Incorrect API key provided" in run["error"]
    assert run["torn_down"] is True
    assert len(upstream.requests[model["model"]]) == 1


async def test_malformed_tool_arguments_go_back_to_the_model_as_a_tool_error(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = gpt(upstream)
    upstream.plan(
        model["model"],
        Reply(tool_calls=[("lookup", '{"topic": Peru')]),
        Reply(tool_calls=[("teleport", "{}")]),
        Reply(text="Lima."),
    )
    run = await run_to_end(api, model_body(model, PERU))

    assert run["status"] == "completed" and run["reward"] == 1.0
    requests = upstream.requests[model["model"]]
    bad_json = requests[1].body["messages"][-1]
    assert bad_json["role"] == "tool" and "not valid JSON object text" in bad_json["content"]
    # The model's own text is sent back as it wrote it.
    assert requests[1].body["messages"][-2]["tool_calls"][0]["function"]["arguments"] == (
        '{"topic": Peru'
    )
    unknown = requests[2].body["messages"][-1]
    assert "unknown tool 'teleport'" in unknown["content"]


async def test_log_probabilities_are_recorded_when_asked(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = gpt(upstream, log_prob=True, stream=False)
    upstream.plan(model["model"], Reply(text="Lima it is"))
    run = await run_to_end(api, model_body(model, PERU))

    assert upstream.requests[model["model"]][0].body["logprobs"] is True
    answer = [e for e in await trajectory(api, run["run_id"]) if e.get("logprobs")]
    assert [p["token"] for p in answer[0]["logprobs"]] == ["Lima ", "it ", "is"]


async def test_unpriced_models_are_counted_not_guessed(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = {**gpt(upstream), "model": f"my-finetune-{uuid.uuid4().hex[:6]}"}
    upstream.plan(model["model"], Reply(text="Lima."))
    run = await run_to_end(api, model_body(model, PERU))

    assert run["usage"]["unpriced_calls"] == 1 and run["usage"]["cost_usd"] == 0
