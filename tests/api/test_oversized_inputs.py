"""Oversized inputs get a clear error at once, never a run stuck retrying."""

from __future__ import annotations

import time

import httpx

from tests.harness import answer_step, run_body, run_to_end, tool_step

MEGABYTE = 1024 * 1024


async def test_a_ten_megabyte_argument_is_refused_saying_the_limit(
    api: httpx.AsyncClient,
) -> None:
    body = run_body("orders", "refund_damaged", {"customer": "x" * (10 * MEGABYTE),
                    "order_id": "A-1002"}, answer_step("no"))  # fmt: skip
    started = time.monotonic()

    response = await api.post("/v1/runs", json=body)

    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "args"] and "over the limit of 1,000,000" in detail["msg"]
    assert len(response.content) < 2000, "the answer must not echo the argument back"
    assert time.monotonic() - started < 10


async def test_a_five_megabyte_tool_result_goes_back_to_the_model_as_an_error(
    api: httpx.AsyncClient,
) -> None:
    # get_order names the order it cannot find: a 5 MB id makes a 5 MB result.
    huge_id = "Z" * (5 * MEGABYTE)
    body = run_body(
        "orders",
        "refund_damaged",
        {"customer": "ada", "order_id": "A-1002"},
        tool_step("get_order", order_id=huge_id),
        answer_step("That order does not exist."),
    )

    run = await run_to_end(api, body, within=60)

    assert run["status"] == "completed" and run["steps"] == 2
    events = (await api.get(f"/v1/runs/{run['run_id']}/events")).json()
    result = next(e["data"] for e in events if e["data"].get("role") == "tool")
    assert result["is_error"]
    assert "over the limit of 200,000" in result["content"] and len(result["content"]) < 500
