"""Remote environments: a real MCP server (the `mcp` SDK's own) with per-run carts, and an
HTTP tool server, driven through real API and worker processes."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from tests.harness import (
    Stack,
    answer_step,
    free_port,
    run_body,
    run_to_end,
    serving,
    tool_step,
    wait_for_run,
)
from tests.servers.processes import ShopServer, shop_config

pytestmark = pytest.mark.asyncio(loop_scope="session")

ITEMS = ["apple", "pear"]
OFFLINE_PORT = free_port()


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ShopServer]:
    server = ShopServer(log=tmp_path_factory.mktemp("shop") / "shop.log")
    await server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def doomed_shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ShopServer]:
    """A shop that tests stop or restart mid-run."""
    server = ShopServer(log=tmp_path_factory.mktemp("doomed") / "shop.log")
    await server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def remote_stack(
    temporal_address: str,
    tmp_path_factory: pytest.TempPathFactory,
    shop: ShopServer,
    doomed_shop: ShopServer,
) -> AsyncIterator[Stack]:
    stdio_command = [sys.executable, "-m", "tests.servers.mcp_shop", "--stdio"]
    remotes = [
        shop_config("shop", shop),
        shop_config("doomed-shop", doomed_shop, max_attempts=2),
        {"name": "shop-stdio", "transport": "mcp-stdio", "command": stdio_command},
        {
            "name": "offline",
            "transport": "mcp-http",
            "url": f"http://127.0.0.1:{OFFLINE_PORT}/mcp",
            "max_attempts": 2,
        },
    ]
    stack = Stack(
        temporal_address=temporal_address,
        workdir=tmp_path_factory.mktemp("remote"),
        extra_env={"LOOPLINE_REMOTE_ENVIRONMENTS": json.dumps(remotes)},
    )
    stack.start_worker()
    await stack.start_api()
    yield stack
    stack.stop()


@pytest.fixture
async def api(remote_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with remote_stack.client() as http:
        yield http


def buying(*steps: dict[str, Any], environment: str = "shop", **extra: Any) -> dict[str, Any]:
    return run_body(environment, "buy", {"items": ITEMS}, *steps, **extra)


def adding(*items: str, server_delay: float = 0.0) -> list[dict[str, Any]]:
    """Steps that add items; the server sleeps `server_delay` s inside each call."""
    arguments = {"price": 1.5, "delay": server_delay}
    return [
        {"tool_calls": [{"name": "add_item", "arguments": {"item": item, **arguments}}]}
        for item in items
    ]


async def tool_messages(api: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    events = (await api.get(f"/v1/runs/{run_id}/events", params={"limit": 1000})).json()
    return [e["data"] for e in events if e["type"] == "message" and e["data"]["role"] == "tool"]


def keys_of(counts: dict[str, int], run_id: str) -> dict[str, int]:
    return {key: n for key, n in counts.items() if key.startswith(f"{run_id}:")}


async def test_run_completes_with_the_servers_reward_and_releases_its_session(
    api: httpx.AsyncClient, shop: ShopServer
) -> None:
    right = await run_to_end(api, buying(*adding(*ITEMS), answer_step("done")))
    wrong = await run_to_end(api, buying(*adding("apple"), answer_step("done")))

    assert right["status"] == "completed", right["error"]
    assert right["reward"] == 1.0, right["reward_details"]
    assert right["reward_details"]["cart"] == sorted(ITEMS)
    assert wrong["status"] == "completed", wrong["error"]
    assert wrong["reward"] == 0.0
    stats = await shop.stats()
    applied = keys_of(stats["applied"], right["run_id"])
    assert len(applied) == 3 and set(applied.values()) == {1}  # setup and two items
    assert not stats["sessions"], "teardown released both carts"
    assert len(stats["released"]) >= 2


async def test_include_and_exclude_lists_hold(api: httpx.AsyncClient, shop: ShopServer) -> None:
    excluded = await run_to_end(
        api,
        buying(
            *adding(*ITEMS),
            tool_step("empty_cart"),
            answer_step("done"),
            exclude_tools=["empty_cart"],
        ),
    )
    included = await run_to_end(
        api,
        buying(
            tool_step("view_cart"), *adding(*ITEMS), answer_step("done"), include_tools=["add_item"]
        ),
    )
    unknown = await run_to_end(api, buying(answer_step("done"), include_tools=["refund"]))

    assert excluded["reward"] == 1.0, "the excluded tool never emptied the cart"
    assert included["reward"] == 1.0
    stats = await shop.stats()
    for run in (excluded, included):
        assert len(keys_of(stats["received"], run["run_id"])) == 3  # setup and two items
    refused = (await tool_messages(api, excluded["run_id"]))[-1]
    assert refused["is_error"] and "unknown tool 'empty_cart'" in refused["content"]
    assert "available tools: add_item, view_cart" in refused["content"]
    assert unknown["status"] == "failed"
    assert "include_tools names refund, which the tool server does not offer" in unknown["error"]


async def test_schema_invalid_arguments_go_back_to_the_model_unsent(
    api: httpx.AsyncClient, shop: ShopServer
) -> None:
    bad = tool_step("add_item", item="apple", price="cheap")
    run = await run_to_end(api, buying(bad, *adding(*ITEMS), answer_step("done")))

    assert run["status"] == "completed" and run["reward"] == 1.0
    first = (await tool_messages(api, run["run_id"]))[0]
    assert first["is_error"]
    assert (
        "invalid arguments for add_item: price: 'cheap' is not of type 'number'"
        in (first["content"])
    )
    assert len(keys_of((await shop.stats())["received"], run["run_id"])) == 3


async def test_a_cancelled_run_releases_its_session(
    api: httpx.AsyncClient, shop: ShopServer
) -> None:
    steps = [*adding("apple"), tool_step("view_cart", delay=30), answer_step("ok")]
    run_id = (await api.post("/v1/runs", json=buying(*steps))).json()["run_id"]
    while not keys_of((await shop.stats())["applied"], run_id).keys() - {f"{run_id}:setup"}:
        await _pause()
    session = (await shop.stats())["sessions"]
    await api.post(f"/v1/runs/{run_id}/cancel", json={"reason": "test"})
    run = await wait_for_run(api, run_id, within=30)

    assert run["status"] == "cancelled"
    stats = await shop.stats()
    assert set(session) - set(stats["sessions"]), "the run's cart was released"
    assert set(session) & set(stats["released"])


async def test_a_worker_killed_mid_call_applies_each_side_effect_once(
    remote_stack: Stack, api: httpx.AsyncClient, shop: ShopServer
) -> None:
    started = await api.post(
        "/v1/runs", json=buying(*adding(*ITEMS, server_delay=3), answer_step("ok"))
    )
    run_id = started.json()["run_id"]
    while not any(k.count(":") == 2 for k in keys_of((await shop.stats())["received"], run_id)):
        await _pause()
    remote_stack.workers[0].send_signal(signal.SIGKILL)
    remote_stack.workers[0].wait()
    remote_stack.workers.pop(0)
    remote_stack.start_worker()
    run = await wait_for_run(api, run_id, within=120)

    assert run["status"] == "completed", run["error"]
    assert run["reward"] == 1.0, run["reward_details"]
    stats = await shop.stats()
    assert set(keys_of(stats["applied"], run_id).values()) == {1}
    received = keys_of(stats["received"], run_id)
    assert max(received.values()) == 2, "the call cut short was sent again, and dropped"


async def test_a_server_that_stops_mid_run_fails_the_run_clearly(
    api: httpx.AsyncClient, doomed_shop: ShopServer
) -> None:
    steps = [*adding("apple"), tool_step("view_cart", delay=3), answer_step("ok")]
    started = await api.post("/v1/runs", json=buying(*steps, environment="doomed-shop"))
    run_id = started.json()["run_id"]
    while not keys_of((await doomed_shop.stats())["applied"], run_id):
        await _pause()
    doomed_shop.stop()
    run = await wait_for_run(api, run_id, within=60)
    await doomed_shop.start()

    assert run["status"] == "failed"
    # The server may stop before add_item's answer is back: that call is then the one that
    # cannot reach it on its retry.
    reached = re.search(
        r"tool (add_item|view_cart): cannot reach the server of environment "
        r"'doomed-shop'",
        run["error"],
    )
    assert reached, run["error"]


async def test_a_server_that_lost_the_session_fails_the_run_instead_of_a_wrong_reward(
    api: httpx.AsyncClient, doomed_shop: ShopServer
) -> None:
    steps = [*adding("apple"), tool_step("add_item", 3, item="pear", price=1), answer_step("ok")]
    started = await api.post("/v1/runs", json=buying(*steps, environment="doomed-shop"))
    run_id = started.json()["run_id"]
    while not keys_of((await doomed_shop.stats())["applied"], run_id):
        await _pause()
    await doomed_shop.forget_sessions()
    run = await wait_for_run(api, run_id, within=60)

    assert run["status"] == "failed"
    assert run["reward"] is None
    assert "lost the run's session" in run["error"]


async def test_environments_lists_remote_ones_with_their_tools_and_reachability(
    api: httpx.AsyncClient,
) -> None:
    listed = {env["name"]: env for env in (await api.get("/v1/environments")).json()}

    assert {"orders", "trivia", "shop", "shop-stdio", "offline"} <= set(listed)
    shop = listed["shop"]
    assert shop["kind"] == "remote" and shop["remote"]["reachable"]
    assert [tool["name"] for tool in shop["tools"]] == ["add_item", "view_cart", "empty_cart"]
    assert shop["tools"][0]["parameters"]["required"] == ["item", "price"]
    assert shop["scenarios"][0]["name"] == "buy"
    offline = listed["offline"]
    assert not offline["remote"]["reachable"]
    assert "cannot reach the server of environment 'offline'" in offline["remote"]["error"]
    assert listed["orders"]["kind"] == "local" and listed["orders"]["remote"] is None


async def test_an_unreachable_environment_fails_its_run_after_its_attempts(
    api: httpx.AsyncClient,
) -> None:
    run = await run_to_end(api, run_body("offline", "anything", {}, answer_step("ok")))

    assert run["status"] == "failed"
    assert "listing the tools: cannot reach the server of environment 'offline'" in run["error"]


async def test_remote_scenario_args_are_checked_when_the_run_starts(
    api: httpx.AsyncClient,
) -> None:
    bad_args = await api.post(
        "/v1/runs", json=run_body("shop", "buy", {"items": "apple"}, answer_step("ok"))
    )
    unknown = await api.post(
        "/v1/runs", json=run_body("shop", "sell", {"items": []}, answer_step("ok"))
    )

    assert bad_args.status_code == 422
    assert "bad args for scenario 'buy': items: 'apple' is not of type 'array'" in bad_args.text
    assert unknown.status_code == 422
    assert "environment 'shop' has no scenario 'sell'; available: buy" in unknown.text


async def test_an_mcp_server_over_stdio_runs_a_scenario(api: httpx.AsyncClient) -> None:
    run = await run_to_end(
        api, buying(*adding(*ITEMS), answer_step("ok"), environment="shop-stdio")
    )

    assert run["status"] == "completed", run["error"]
    assert run["reward"] == 1.0


def calculator_server(calls: list[dict[str, Any]]) -> FastAPI:
    """An HTTP tool server with one tool, in this process."""
    app = FastAPI()

    @app.get("/tools")
    async def tools() -> dict[str, Any]:
        schema = {"type": "object", "properties": {"expression": {"type": "string"}}}
        return {"tools": [{"name": "calculate", "description": "Sums", "input_schema": schema}]}

    @app.post("/call")
    async def call(body: dict[str, Any]) -> dict[str, Any]:
        calls.append(body)
        if body["name"] != "calculate":
            raise HTTPException(404, f"no tool {body['name']}")
        total = sum(int(term) for term in body["arguments"]["expression"].split("+"))
        return {"content": str(total), "is_error": False}

    return app


async def test_tool_server_url_points_a_runs_tools_at_an_http_tool_server(
    api: httpx.AsyncClient,
) -> None:
    calls: list[dict[str, Any]] = []
    port = free_port()
    model = {
        "model": "scripted",
        "provider": "scripted",
        "tool_server_url": f"http://127.0.0.1:{port}",
    }
    body = run_body(
        "trivia",
        "capital",
        {"country": "France"},
        tool_step("calculate", expression="2+3"),
        tool_step("lookup", topic="France"),
        answer_step("Paris"),
        model=model,
    )
    async with serving(calculator_server(calls), port):
        run = await run_to_end(api, body)
    messages = await tool_messages(api, run["run_id"])

    assert run["status"] == "completed", run["error"]
    assert run["reward"] == 1.0
    assert messages[0]["content"] == "5" and not messages[0]["is_error"]
    assert "unknown tool 'lookup'; available tools: calculate" in messages[1]["content"]
    assert len(calls) == 1
    assert calls[0]["idempotency_key"].startswith(f"{run['run_id']}:1:")


async def _pause() -> None:
    await asyncio.sleep(0.1)
