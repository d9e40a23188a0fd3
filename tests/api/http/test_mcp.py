"""Environments served over MCP, driven by the official `mcp` client: an MCP session is a
run whose agent is the client, with durable tool calls and a reward at the end."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_types import RequestParamsMeta, TextContent, TextResourceContents

from loopline.models import Scope
from tests.harness import Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY = "loopline/idempotency_key"
RETRY_KEY = cast(RequestParamsMeta, {KEY: "refund-1"})
REFUND = {"order_id": "A-1001", "amount": 39.0, "reason": "arrived damaged"}


@pytest.fixture(scope="module")
async def mcp_stack(
    temporal_address: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """A stack of its own: a test kills its worker."""
    stack = Stack(temporal_address=temporal_address, workdir=tmp_path_factory.mktemp("mcp"))
    await stack.start_api()
    stack.start_worker()
    yield stack
    stack.stop()


def connect(stack: Stack, environment: str, query: str = "", key: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {key or stack.api_key}"}
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    url = f"{stack.api_url}/v1/environments/{environment}/mcp{query}"
    return Client(streamable_http_client(url, http_client=http), read_timeout_seconds=60)


def text_of(result: Any) -> str:
    [content] = result.content
    assert isinstance(content, TextContent)
    return content.text


async def evaluation(client: Client, uri: str) -> dict[str, Any]:
    read = await client.read_resource(uri)
    [contents] = read.contents
    assert isinstance(contents, TextResourceContents)
    result: dict[str, Any] = json.loads(contents.text)
    return result


async def test_an_mcp_session_is_a_durable_run_with_a_reward(mcp_stack: Stack) -> None:
    async with connect(mcp_stack, "orders") as client:
        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        assert {"orders:refund_damaged", "orders:cancel_unshipped"} <= prompts
        prompt = await client.get_prompt(
            "orders:refund_damaged", {"customer": "ada", "order_id": "A-1001"}
        )
        [message] = prompt.messages
        assert isinstance(message.content, TextContent)
        assert "A-1001 arrived damaged" in message.content.text
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"issue_refund", "open_ticket", "find_orders"} <= tools

        refund = await client.call_tool("issue_refund", REFUND, meta=RETRY_KEY)
        assert text_of(refund) == "refunded 39.00 on order A-1001"
        # The client retries the call (its answer was lost, say): it is not applied again.
        again = await client.call_tool("issue_refund", REFUND, meta=RETRY_KEY)
        assert text_of(again) == text_of(refund)

        # The worker dies between two calls; another takes the run over.
        worker = mcp_stack.workers[0]
        worker.kill()
        worker.wait()
        mcp_stack.start_worker()
        ticket = await client.call_tool(
            "open_ticket", {"order_id": "A-1001", "subject": "damaged kettle"}
        )
        assert text_of(ticket) == "T-1"
        mistake = await client.call_tool("get_order", {"order_id": "Z-9"})
        assert mistake.is_error and "no order 'Z-9'" in text_of(mistake)

        result = await evaluation(client, "orders:refund_damaged")
    assert result["reward"] == 1.0 and result["done"] is True
    run_id = result["info"]["run_id"]

    async with mcp_stack.client() as api:
        run = (await api.get(f"/v1/runs/{run_id}", params={"include_state": True})).json()
        events = (await api.get(f"/v1/runs/{run_id}/events")).json()
        listed = (await api.get("/v1/runs", params={"environment": "orders"})).json()
    assert run["status"] == "completed" and run["model"] == "client"
    assert run["reward"] == 1.0 and run["reward_details"]
    assert len(run["state"]["refunds"]) == 1
    assert run_id in {listed_run["run_id"] for listed_run in listed["runs"]}
    calls = [
        call["name"]
        for event in events
        if event["data"].get("role") == "assistant"
        for call in event["data"]["tool_calls"]
    ]
    assert calls == ["issue_refund", "open_ticket", "get_order"]
    assert run["temporal_ui_url"]


async def test_a_session_url_can_name_a_task_whose_tool_lists_hold(mcp_stack: Stack) -> None:
    async with mcp_stack.client() as api:
        upload = {
            "name": "mcp-support",
            "tasks": [
                {
                    "slug": "cancel-bob",
                    "scenario": "cancel_unshipped",
                    "args": {"customer": "bob"},
                    "env": {"name": "orders", "exclude": ["issue_refund"]},
                }
            ],
        }
        response = await api.post("/v1/tasksets/upload", json=upload)
        assert response.status_code in {200, 201}, response.text

    async with connect(mcp_stack, "orders", "?task=mcp-support:cancel-bob") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert "issue_refund" not in tools and "cancel_order" in tools
        refused = await client.call_tool("issue_refund", REFUND)
        assert refused.is_error and "unknown tool 'issue_refund'" in text_of(refused)
        for order_id in ("B-2002", "B-2003"):
            await client.call_tool("cancel_order", {"order_id": order_id})
        result = await evaluation(client, "orders:cancel_unshipped")
    assert result["reward"] == 1.0


async def test_refusals_say_what_to_do(mcp_stack: Stack) -> None:
    async with connect(mcp_stack, "orders") as client:
        with pytest.raises(MCPError, match=r"several scenarios .* pick one"):
            await client.call_tool("find_orders", {"customer": "ada"})
        with pytest.raises(MCPError, match="bad args for scenario 'refund_damaged'"):
            await client.get_prompt("orders:refund_damaged", {"customer": "ada"})
        with pytest.raises(MCPError, match="not a scenario of 'orders'"):
            await client.get_prompt("trivia:capital", {"country": "Kenya"})

    async with connect(mcp_stack, "trivia", '?scenario=capital&args={"country":"Kenya"}') as client:
        submit = cast(RequestParamsMeta, {KEY: "submit-1"})
        answer = await client.call_tool("submit_answer", {"answer": "Nairobi"}, meta=submit)
        assert text_of(answer)
        # Its answer was lost, say: the retry after the end gets it again.
        again = await client.call_tool("submit_answer", {"answer": "Nairobi"}, meta=submit)
        assert text_of(again) == text_of(answer)
        with pytest.raises(MCPError, match="open a new session to go on"):
            await client.call_tool("lookup", {"topic": "Kenya"})
        result = await evaluation(client, "trivia:capital")
        assert result["reward"] == 1.0 and result["info"]["stop_reason"] == "stop_tool"

    initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}
    read_only = await mcp_stack.create_key("default", Scope.task_read)
    async with httpx.AsyncClient(base_url=mcp_stack.api_url) as http:
        anonymous = await http.post("/v1/environments/orders/mcp", json=initialize)
        assert anonymous.status_code == 401
        headers = {"Authorization": f"Bearer {read_only}"}
        reader = await http.post("/v1/environments/orders/mcp", json=initialize, headers=headers)
        assert reader.status_code == 403 and "task:write" in reader.text
        admin = {"Authorization": f"Bearer {mcp_stack.api_key}"}
        url = "/v1/environments/orders/mcp"
        nan = await http.post(
            url,
            content=b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": NaN}}',
            headers=admin,
        )
        # As every route's: refused before it reaches the endpoint.
        assert nan.status_code == 422 and "NaN is not a JSON number" in nan.text
        listed = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": [1]}
        assert (await http.post(url, json=listed, headers=admin)).json()["error"]["code"] == -32600
        lost = await http.post(
            url,
            json={**listed, "params": {}},
            headers={**admin, "Mcp-Session-Id": "../../etc/passwd"},
        )
        assert lost.status_code == 404 and "initialize a new one" in lost.text
        unknown = await http.post(
            "/v1/environments/nowhere/mcp",
            json=initialize,
            headers={"Authorization": f"Bearer {mcp_stack.api_key}"},
        )
        assert unknown.json()["error"]["message"].startswith("unknown environment")
