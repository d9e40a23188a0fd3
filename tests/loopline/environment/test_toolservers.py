"""The HTTP tool-server client sorts failures by what a run should do about them."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from loopline.environment import toolservers
from loopline.environment.toolservers import CallMeta
from loopline.environment.toolservers._http import HttpToolServer
from loopline.outbound import OutboundPolicy
from tests.harness import free_port, serving

LOOPBACK = OutboundPolicy.of(["127.0.0.0/8"])
META = CallMeta(run_id="r1", idempotency_key="r1:1:call_1", session="s1")


def answering(status: int) -> FastAPI:
    app = FastAPI()

    @app.post("/call")
    async def call(body: dict[str, object]) -> JSONResponse:
        if body["name"] == "slow":
            await asyncio.sleep(2)
        return JSONResponse({"detail": f"answered {status}"}, status_code=status)

    return app


@pytest.mark.parametrize(
    ("status", "expected", "retryable"),
    [
        (410, toolservers.SessionLost, False),
        (422, toolservers.InvalidToolCall, False),
        (404, toolservers.InvalidToolCall, False),
        (401, toolservers.ServerRefused, False),
        (503, toolservers.ServerUnreachable, True),
        (429, toolservers.ServerUnreachable, True),
    ],
)
async def test_statuses_say_what_the_run_does(
    status: int, expected: type[toolservers.ToolServerError], retryable: bool
) -> None:
    port = free_port()
    server = HttpToolServer(
        label="the test server", url=f"http://127.0.0.1:{port}", timeout=5, outbound=LOOPBACK
    )
    async with serving(answering(status), port):
        with pytest.raises(expected) as raised:
            await server.call_tool("add", {}, META)
    await server.aclose()

    assert raised.value.retryable is retryable
    assert f"answered {status}" in str(raised.value)


async def test_no_server_and_a_slow_server_are_worth_retrying() -> None:
    port = free_port()
    nobody = HttpToolServer(
        label="nobody", url=f"http://127.0.0.1:{free_port()}", timeout=5, outbound=LOOPBACK
    )
    slow = HttpToolServer(
        label="the slow server", url=f"http://127.0.0.1:{port}", timeout=0.5, outbound=LOOPBACK
    )
    with pytest.raises(toolservers.ServerUnreachable, match="cannot reach nobody"):
        await nobody.list_tools()
    async with serving(answering(200), port):
        with pytest.raises(
            toolservers.ServerTimedOut, match=r"did not answer POST /call within 0\.5 s"
        ):
            await slow.call_tool("slow", {}, META)
    await nobody.aclose()
    await slow.aclose()
