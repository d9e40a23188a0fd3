"""Summarising older exchanges every N turns, through a real provider call."""

from __future__ import annotations

import uuid

import httpx

from activities.context import SUMMARY_HEADING, SUMMARY_INSTRUCTIONS
from tests.harness import model_body, run_to_end
from tests.upstream import Reply, Upstream


def lookup(topic: str) -> Reply:
    return Reply(tool_calls=[("lookup", f'{{"topic": "{topic}"}}')])


async def test_older_exchanges_are_summarised_and_recent_ones_kept(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    model = f"gpt-4o-{uuid.uuid4().hex[:8]}"
    config = {
        "model": model,
        "provider": "custom",
        "base_url": upstream.openai_url,
        "summarize_every_n_turns": 2,
        "context_stride": 1,
    }
    upstream.plan(
        model,
        lookup("Japan"),
        lookup("Kenya"),
        Reply(text="Looked up Japan (Tokyo)."),  # the summary asked for before step 3
        lookup("Peru"),
        Reply(text="Lima."),
    )
    run = await run_to_end(api, model_body(config, {"country": "Peru"}))
    assert run["status"] == "completed" and run["reward"] == 1.0, run["error"]
    assert run["usage"]["model_calls"] == 5

    requests = [r.body for r in upstream.requests[model]]
    summary_request = requests[2]
    assert "tools" not in summary_request
    assert summary_request["messages"][0]["content"] == SUMMARY_INSTRUCTIONS
    transcript = summary_request["messages"][1]["content"]
    assert 'assistant called lookup({"topic": "Japan"})' in transcript
    assert "Kenya" not in transcript  # the last exchange stays verbatim instead

    step3 = requests[3]["messages"]
    assert [m["role"] for m in step3] == ["system", "user", "user", "assistant", "tool"]
    assert step3[2]["content"] == f"{SUMMARY_HEADING}\nLooked up Japan (Tokyo)."
    assert step3[4]["content"] == "Kenya: capital city Nairobi."
    # The trace keeps the whole conversation.
    trajectory = await api.get(f"/v1/runs/{run['run_id']}", params={"include_trajectory": True})
    types = [event["type"] for event in trajectory.json()["trajectory"]]
    assert types.count("summary") == 1
