"""Overhead of a remote tool call (MCP) over an in-process tool, per call.

The same episode (N tool calls that put an item in a cart, then an answer) runs as a
Loopline run (real dev server, in-process worker) against
  (a) an in-process environment whose tool appends to the run's state;
  (b) tests/servers/mcp_shop.py over streamable HTTP, in its own process;
  (c) the same server over stdio, a subprocess of the worker.
It prints the median ms per tool call of each and the overhead of (b) and (c) over (a),
and, apart from Temporal, the median of a bare MCP call on a kept-open connection.

    python -m bench.remote_tools [--calls 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import BaseModel
from temporalio.client import Client

from loopline.environment import Environment
from loopline.environment.registry import Registry
from loopline.environment.remote import RemoteState
from loopline.environment.toolservers import CallMeta
from loopline.models import (
    RemoteCallPolicy,
    RemoteEnvironmentConfig,
    RemoteTransport,
    RunSpec,
    Script,
    ScriptedStep,
    ScriptedToolCall,
)
from loopline.outbound import OutboundPolicy
from loopline.secrets import SecretBox
from loopline.store import TraceStore, open_stores
from loopline.store.rows import NewRun
from tests.harness import dev_server
from tests.servers.processes import ShopServer
from workers.cli.up import DEV_SERVER_TUNING
from workers.worker import WorkerParts, build_worker
from workflows.contract.names import initial_search_attributes, run_workflow_id
from workflows.contract.payloads import RunInput
from workflows.run import RunWorkflow

ITEMS = {"items": ["apple"]}


class Cart(BaseModel):
    items: list[str] = []


local_shop = Environment("local-shop", state=Cart)


@local_shop.tool
def add_item(item: str, price: float, cart: Cart) -> str:
    """Put an item in the cart."""
    cart.items.append(item)
    return f"added {item}; the cart holds {len(cart.items)} items"


@local_shop.scenario
def buy(items: list[str]) -> object:
    return Environment.setup(f"put {', '.join(items)} in the cart", Cart())


@buy.evaluation
def _all_there(outcome: object) -> float:
    return 1.0


def episode(calls: int) -> Script:
    add = ScriptedToolCall(name="add_item", arguments={"item": "apple", "price": 1.0})
    return Script(
        steps=[
            *(ScriptedStep(tool_calls=[add]) for _ in range(calls)),
            ScriptedStep(content="done"),
        ]
    )


async def timed_run(client: Client, store: TraceStore, environment: str, calls: int) -> float:
    run_id = uuid.uuid4().hex
    remote = None if environment == local_shop.name else RemoteCallPolicy()
    spec = RunSpec(
        environment=environment,
        scenario="buy",
        args=ITEMS,
        model="scripted",
        script=episode(calls),
        max_steps=calls + 1,
        remote=remote,
    )
    await store.create_run(NewRun(run_id, run_id, spec))
    run = RunInput(
        run_id=run_id,
        environment=environment,
        scenario="buy",
        model="scripted",
        max_steps=calls + 1,
        remote=remote,
    )
    started = time.perf_counter()
    result = await client.execute_workflow(
        RunWorkflow.run,
        run,
        id=run_workflow_id(run_id),
        task_queue="bench",
        search_attributes=initial_search_attributes(run),
    )
    assert result.status.value == "completed", result
    return time.perf_counter() - started


async def bare_calls(registry: Registry, count: int) -> list[float]:
    """ms of each `add_item` call on the HTTP server's kept-open connection."""
    remote = registry.remote("mcp-http-shop")
    assert remote is not None
    setup = await remote.setup("buy", ITEMS, CallMeta("bench", f"bench:{uuid.uuid4().hex}"))
    session = setup.state.session if isinstance(setup.state, RemoteState) else None
    times = []
    for index in range(count):
        meta = CallMeta("bench", f"bench:{uuid.uuid4().hex}:{index}", str(session))
        started = time.perf_counter()
        await remote.server.call_tool("add_item", {"item": "pear", "price": 1.0}, meta)
        times.append((time.perf_counter() - started) * 1000)
    return times


# The shop server runs on this machine, which the default outbound policy refuses.
LOOPBACK_ALLOWED = OutboundPolicy.of(["127.0.0.0/8"])


async def main(calls: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        shop = ShopServer(log=Path(folder) / "shop.log")
        await shop.start()
        stdio = [sys.executable, "-m", "tests.servers.mcp_shop", "--stdio"]
        remotes = [
            RemoteEnvironmentConfig(
                name="mcp-http-shop", transport=RemoteTransport.mcp_http, url=shop.url
            ),
            RemoteEnvironmentConfig(
                name="mcp-stdio-shop", transport=RemoteTransport.mcp_stdio, command=stdio
            ),
        ]
        server = await dev_server(dev_server_extra_args=DEV_SERVER_TUNING)
        try:
            async with (
                open_stores(f"sqlite:///{Path(folder) / 'bench.db'}") as stores,
                Registry([local_shop], remotes, LOOPBACK_ALLOWED) as registry,
            ):
                store = stores.runs
                parts = WorkerParts(
                    server.client, "bench", stores, registry, SecretBox(Fernet.generate_key())
                )
                async with build_worker(parts, parts.caller(), parts.interceptors()):
                    names = [local_shop.name, "mcp-http-shop", "mcp-stdio-shop"]
                    for name in names:
                        await timed_run(server.client, store, name, 3)  # warm-up
                    timings = {
                        name: [
                            await timed_run(server.client, store, name, calls)
                            for _ in range(repeats)
                        ]
                        for name in names
                    }
                    bare = await bare_calls(registry, 200)
        finally:
            await server.shutdown()
            shop.stop()
    report(calls, timings, bare)


def report(calls: int, timings: dict[str, list[float]], bare: list[float]) -> None:
    per_call = {name: statistics.median(t) / calls * 1000 for name, t in timings.items()}
    local = per_call[local_shop.name]
    print(
        f"{calls} tool calls per run, median of {len(timings[local_shop.name])} runs, "
        "ms per tool call (model step included):"
    )
    labels = {
        local_shop.name: "(a) in-process tool (local activity)",
        "mcp-http-shop": "(b) MCP over streamable HTTP (activity)",
        "mcp-stdio-shop": "(c) MCP over stdio (activity)",
    }
    for name, label in labels.items():
        print(f"  {label:44s} {per_call[name]:8.2f}")
    for name in ("mcp-http-shop", "mcp-stdio-shop"):
        overhead = per_call[name] - local
        print(
            f"  overhead of {labels[name][:3]} over (a): {overhead:6.2f} ms per call "
            f"({per_call[name] / local:.1f}x)"
        )
    print(
        f"  a bare MCP call on a kept-open HTTP connection: median "
        f"{statistics.median(bare):.2f} ms (of {len(bare)})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    asyncio.run(main(options.calls, options.repeats))
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(0)
