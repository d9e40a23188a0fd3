"""A run's reward combines the scenario's evaluation, a validation check and a rubric judge."""

from __future__ import annotations

import json

import httpx

from tests.activities.providers.test_anthropic_messages import claude
from tests.harness import answer_step, run_body, run_to_end, tool_step
from tests.upstream import Reply, Upstream


async def test_every_evaluator_is_kept_and_the_reward_combines_them(
    api: httpx.AsyncClient,
) -> None:
    verdict = {"score": 0.5, "passed": False, "reasoning": "correct, but it never cited the book"}
    body = run_body(
        "trivia",
        "capital",
        {"country": "Kenya"},
        tool_step("lookup", topic="kenya"),
        answer_step("Nairobi"),
        evaluation={
            "validation": [
                {"name": "lookup", "arguments": {"topic": "kenya"}},
                {"name": "calculator"},
            ],
            "rubric": "# Rubric\n- The answer names the capital.\n- It cites the reference book.",
            "judge_script": {"steps": [answer_step(json.dumps(verdict))]},
            "weights": {"scenario": 2},
        },
    )

    run = await run_to_end(api, body)

    by_evaluator = {result["evaluator"]: result for result in run["evaluations"]}
    assert by_evaluator["scenario"]["score"] == 1.0 and by_evaluator["scenario"]["weight"] == 2
    validation = by_evaluator["validation"]
    assert validation["score"] == 0.5 and not validation["success"]
    assert validation["details"]["missing"] == [{"name": "calculator", "arguments": {}}]
    rubric = by_evaluator["rubric"]
    assert rubric["score"] == 0.5 and rubric["reasoning"] == verdict["reasoning"]
    # (2 * 1.0 + 0.5 + 0.5) / 4
    assert run["reward"] == 0.75 and run["success"] is False
    assert run["usage"]["model_calls"] == 3  # two agent steps and the judge
    events = (
        await api.get(f"/v1/runs/{run['run_id']}/events", params={"event_types": "evaluation"})
    ).json()
    assert sorted(e["data"]["evaluator"] for e in events) == ["rubric", "scenario", "validation"]


async def test_excluded_tools_are_neither_offered_nor_run(api: httpx.AsyncClient) -> None:
    body = run_body(
        "trivia",
        "capital",
        {"country": "Kenya"},
        tool_step("lookup", topic="kenya"),
        answer_step("Nairobi"),
        exclude_tools=["lookup"],
    )

    run = await run_to_end(api, body)

    events = (await api.get(f"/v1/runs/{run['run_id']}/events")).json()
    result = next(e["data"] for e in events if e["data"].get("role") == "tool")
    assert result["is_error"] and "unknown tool 'lookup'" in result["content"]


async def test_a_scripted_judge_without_a_script_is_refused(api: httpx.AsyncClient) -> None:
    body = run_body(
        "trivia",
        "capital",
        {"country": "Kenya"},
        answer_step("Nairobi"),
        evaluation={"rubric": "Be right."},
    )
    response = await api.post("/v1/runs", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "evaluation", "judge_script"]


async def test_a_provider_judge_reads_the_rubric_and_its_cost_counts(
    api: httpx.AsyncClient, upstream: Upstream
) -> None:
    judge = claude(upstream, api_key="sk-ant-judge-9876")
    verdict = {"score": 1, "passed": True, "reasoning": "names Nairobi"}
    upstream.plan(judge["model"], Reply(text=json.dumps(verdict), output_tokens=30))
    body = run_body(
        "trivia",
        "capital",
        {"country": "Kenya"},
        answer_step("Nairobi"),
        evaluation={"rubric": "The answer names the capital.", "judge_model": judge},
    )

    run = await run_to_end(api, body)

    [request] = upstream.requests[judge["model"]]
    sent_key = request.headers.get("x-api-key", "") + request.headers.get("authorization", "")
    assert "sk-ant-judge-9876" in sent_key
    assert "The answer names the capital." in json.dumps(request.body)
    assert "Nairobi" in json.dumps(request.body)
    rubric = next(r for r in run["evaluations"] if r["evaluator"] == "rubric")
    assert rubric["success"] and rubric["reasoning"] == "names Nairobi"
    assert run["reward"] == 1.0 and run["success"] is True
    assert run["usage"]["completion_tokens"] == 30
    assert "sk-ant-judge-9876" not in json.dumps(run)
