"""The native runs API: validation, idempotent start, reading and listing."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.harness import answer_step, run_body, wait_for_run

QUICK = run_body("trivia", "capital", {"country": "Japan"}, answer_step("Tokyo"))


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        ({"environment": "nope"}, ["body", "environment"], "available: chat, orders, trivia"),
        ({"scenario": "nope"}, ["body", "scenario"], "available: capital, total_price"),
        ({"args": {}}, ["body", "args", "country"], "Field required"),
        ({"args": {"country": "Japan", "x": 1}}, ["body", "args", "x"], "Extra inputs"),
        ({"args": {"country": 7}}, ["body", "args", "country"], "valid string"),
        ({"max_steps": 0}, ["body", "max_steps"], "greater than or equal to 1"),
        ({"max_steps": 501}, ["body", "max_steps"], "less than or equal to 500"),
        ({"timeout": 10}, ["body", "timeout"], "greater than or equal to 30"),
        ({"timeout": 601}, ["body", "timeout"], "less than or equal to 600"),
        ({"script": None}, ["body", "script"], "plays the script sent with the run"),
        ({"model": "gpt-x"}, ["body", "model"], "write 'provider/model'"),
        ({"model": "acme/x"}, ["body", "model"], "unknown provider 'acme'"),
        ({"model": "custom/llama"}, ["body", "model"], "needs base_url"),
        (
            {"model": {"model": "claude-x", "provider": "anthropic", "temperature": 1.5}},
            ["body", "model"],
            "temperature 0.0-1.0",
        ),
        (
            {"model": {"model": "claude-x", "provider": "anthropic", "log_prob": True}},
            ["body", "model"],
            "does not return log-probabilities",
        ),
        ({"user_model": "scripted"}, ["body", "user_script"], "plays the script"),
        ({"run_id": "no spaces"}, ["body", "run_id"], "pattern"),
        ({"script": {"steps": []}}, ["body", "script", "steps"], "at least 1"),
        ({"colour": "red"}, ["body", "colour"], "Extra inputs"),
    ],
)
async def test_bad_requests_get_422_saying_what_to_fix(
    api: httpx.AsyncClient, change: dict[str, object], where: list[str], says: str
) -> None:
    response = await api.post("/v1/runs", json={**QUICK, **change})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == where
    assert says in detail["msg"]


async def test_unknown_run_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/runs/does-not-exist")
    assert response.status_code == 404
    assert "does-not-exist" in response.json()["detail"]


async def test_start_is_idempotent_by_run_id(api: httpx.AsyncClient) -> None:
    run_id = f"idem-{uuid.uuid4().hex[:8]}"
    first = await api.post("/v1/runs", json={**QUICK, "run_id": run_id})
    assert first.status_code == 201
    await wait_for_run(api, run_id)
    again = await api.post("/v1/runs", json={**QUICK, "run_id": run_id, "sync": True})
    assert again.status_code == 200
    assert again.json()["status"] == "completed"
    listed = (await api.get("/v1/runs", params={"scenario": "capital", "limit": 200})).json()
    assert [run["run_id"] for run in listed["runs"]].count(run_id) == 1
    other = await api.post("/v1/runs", json={**QUICK, "run_id": run_id, "max_steps": 3})
    assert other.status_code == 409
    assert "different request" in other.json()["detail"]


async def test_async_start_returns_running_then_the_result(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/runs", json=QUICK)
    assert response.status_code == 201
    assert response.json()["status"] in {"pending", "running", "completed"}
    run = await wait_for_run(api, response.json()["run_id"])
    assert run["reward"] == 1.0
    assert run["trajectory"] is None
    assert run["temporal_ui_url"].endswith(f"/workflows/run-{run['run_id']}")


async def test_list_filters_and_paginates(api: httpx.AsyncClient) -> None:
    scenario_runs = []
    for country in ("Kenya", "Canada", "Australia"):
        body = run_body("trivia", "capital", {"country": country}, answer_step("?"), sync=True)
        scenario_runs.append((await api.post("/v1/runs", json=body)).json()["run_id"])
    page = (await api.get("/v1/runs", params={"environment": "trivia", "limit": 2})).json()
    assert page["total"] >= 3 and len(page["runs"]) == 2 and page["limit"] == 2
    newest_three = [
        run["run_id"]
        for offset in (0, 2)
        for run in (
            await api.get(
                "/v1/runs", params={"environment": "trivia", "limit": 2, "offset": offset}
            )
        ).json()["runs"]
    ][:3]
    assert newest_three == list(reversed(scenario_runs))
    orders = (await api.get("/v1/runs", params={"environment": "orders"})).json()["runs"]
    assert all(run["environment"] == "orders" for run in orders)
    failed = (await api.get("/v1/runs", params={"status": "failed"})).json()["runs"]
    assert all(run["status"] == "failed" for run in failed)
    bad = await api.get("/v1/runs", params={"status": "sleeping"})
    assert bad.status_code == 422


async def test_trajectory_and_state_on_request(api: httpx.AsyncClient) -> None:
    body = run_body(
        "orders",
        "cancel_unshipped",
        {"customer": "ada"},
        {"tool_calls": [{"name": "cancel_order", "arguments": {"order_id": "A-1003"}}]},
        answer_step("Cancelled A-1003."),
        sync=True,
    )
    run_id = (await api.post("/v1/runs", json=body)).json()["run_id"]
    run = (
        await api.get(
            f"/v1/runs/{run_id}", params={"include_trajectory": True, "include_state": True}
        )
    ).json()
    assert run["reward"] == 1.0
    assert run["state"]["orders"]["A-1003"]["status"] == "cancelled"
    kinds = [(event["type"], event["data"].get("role")) for event in run["trajectory"]]
    assert kinds == [
        ("message", "system"),
        ("message", "user"),
        ("message", "assistant"),
        ("message", "tool"),
        ("message", "assistant"),
        ("evaluation", None),
        ("reward", None),
        ("status", None),
    ]
    assert [event["seq"] for event in run["trajectory"]] == list(range(1, 9))
    page = (await api.get(f"/v1/runs/{run_id}/events", params={"after": 5, "limit": 1})).json()
    assert [event["seq"] for event in page] == [6]


async def test_environments_list_scenarios_tools_and_schemas(api: httpx.AsyncClient) -> None:
    environments = {env["name"]: env for env in (await api.get("/v1/environments")).json()}
    # The built-in environments, and the one the shared stack adds to them.
    assert set(environments) == {"chat", "orders", "trivia", "wrapped"}
    orders = environments["orders"]
    assert orders["stateful"] is True
    refund = next(tool for tool in orders["tools"] if tool["name"] == "issue_refund")
    assert refund["parameters"]["required"] == ["order_id", "amount", "reason"]
    assert "shop" not in refund["parameters"]["properties"]
    assert "context" not in refund["parameters"]["properties"]
    scenario = next(s for s in orders["scenarios"] if s["name"] == "refund_damaged")
    assert scenario["args_schema"]["required"] == ["customer", "order_id"]
    trivia = environments["trivia"]
    assert {s["style"] for s in trivia["scenarios"]} == {"generator"}
    assert any(tool["stop"] for tool in trivia["tools"])
    missing = await api.get("/v1/environments/nope")
    assert missing.status_code == 404
