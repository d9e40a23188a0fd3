"""Self-hosted OpenAI-compatible servers as they are, and weak models as they behave: the
real `openai` SDK in a real worker against a local server that answers as llama.cpp's does
(tests/upstream.py Quirks), and models that reply with nothing or loop on one call."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.activities.providers.test_openai_chat import LOOKUP_PERU, PERU, trajectory
from tests.harness import model_body, run_to_end
from tests.upstream import NULL_CONTENT_REFUSAL, Failure, Quirks, Reply, Upstream

LLAMA_CPP = Quirks(
    refuses_null_content=True,
    tools_need_choice=True,
    drops_streamed_tool_choice=True,
    no_stream_usage=True,
)


AS_OPENAI = Quirks()


def small_model(upstream: Upstream, quirks: Quirks = AS_OPENAI, **config: Any) -> dict[str, Any]:
    name = f"smollm2-{uuid.uuid4().hex[:8]}"
    upstream.behave(name, quirks)
    return {"model": name, "provider": "custom", "base_url": upstream.openai_url, **config}


async def test_a_llama_cpp_server_runs_tools_with_the_defaults(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = small_model(upstream, LLAMA_CPP)
    upstream.plan(model["model"], Reply(tool_calls=[LOOKUP_PERU]), Reply(text="Lima."))
    run = await run_to_end(api, model_body(model, PERU))

    assert (run["status"], run["stop_reason"], run["reward"]) == ("completed", "answered", 1.0)
    dropped, first, second = upstream.requests[model["model"]]
    assert dropped.body["stream"] is True and dropped.body["tool_choice"] == "auto"
    assert "stream" not in first.body and first.body["tool_choice"] == "auto"
    # The server refuses null content beside tool calls; custom servers get "".
    assert "stream" not in second.body
    assert second.body["messages"][2]["content"] == ""
    steps = [e for e in await trajectory(api, run["run_id"]) if "finish_reason" in e]
    assert all("not streamed" in step["note"] for step in steps), steps
    assert "stream ended before its first chunk" in steps[0]["note"], steps[0]["note"]


async def test_missing_usage_is_counted_as_unreported_not_as_zero_tokens(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = small_model(upstream, Quirks(no_stream_usage=True))
    upstream.plan(model["model"], Reply(text="Lima."))
    run = await run_to_end(api, model_body(model, PERU))

    assert run["status"] == "completed", run
    usage = run["usage"]
    assert (usage["model_calls"], usage["unreported_calls"], usage["prompt_tokens"]) == (1, 1, 0)
    assert upstream.requests[model["model"]][0].body["stream_options"] == {"include_usage": True}


async def test_tool_choice_and_parallel_tool_calls_reach_the_server(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = small_model(
        upstream, tool_choice={"name": "lookup"}, parallel_tool_calls=False, stream=False
    )
    upstream.plan(model["model"], Reply(text="Lima."))
    await run_to_end(api, model_body(model, PERU))

    [request] = upstream.requests[model["model"]]
    assert request.body["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert request.body["parallel_tool_calls"] is False


async def test_a_validation_error_answered_twice_fails_the_run_at_once(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = small_model(upstream, stream=False)
    upstream.plan(model["model"], *[Failure(500, NULL_CONTENT_REFUSAL)] * 3)
    run = await run_to_end(api, model_body(model, PERU))

    assert (run["status"], run["stop_reason"]) == ("failed", "error"), run
    assert len(upstream.requests[model["model"]]) == 2
    error = run["error"]
    assert f"custom/{model['model']}" in error and "HTTP 500" in error, error
    assert "validation error" in error and "a retry cannot mend it" in error, error


async def test_a_4xx_refusal_is_not_retried_and_says_what_the_server_said(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = small_model(upstream, stream=False)
    upstream.plan(model["model"], Failure(400, "'tool_choice' is not supported by this model"))
    run = await run_to_end(api, model_body(model, PERU))

    assert run["status"] == "failed" and len(upstream.requests[model["model"]]) == 1
    assert "HTTP 400" in run["error"] and "tool_choice" in run["error"], run["error"]


async def test_an_empty_reply_is_its_own_stop_reason(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = small_model(upstream)
    upstream.plan(model["model"], Reply(text=""))
    run = await run_to_end(api, model_body(model, PERU))

    assert (run["status"], run["stop_reason"]) == ("completed", "empty_reply"), run
    assert run["reward"] == 0.0


async def test_the_same_call_over_and_over_stops_the_loop(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = small_model(upstream, max_repeated_tool_calls=3)
    upstream.plan(model["model"], *[Reply(tool_calls=[LOOKUP_PERU])] * 10)
    run = await run_to_end(api, model_body(model, PERU))

    assert (run["status"], run["stop_reason"]) == ("completed", "repeated_tool_call"), run
    assert len(upstream.requests[model["model"]]) == 3
    results = [e for e in await trajectory(api, run["run_id"]) if e.get("role") == "tool"]
    assert len(results) == 2, "the third identical call is not run"
