"""A stateful MCP server for the remote-environment tests: a shop whose carts live in
per-run sessions, written with the `mcp` SDK's own server.

It follows Loopline's scenario convention (`setup`, `evaluate`, `teardown` tools) and
applies each side effect once per idempotency key, counting what it received and applied
so that tests can check both. `GET /stats` returns those counts.

    python -m tests.servers.mcp_shop --port 8123     # streamable HTTP at /mcp
    python -m tests.servers.mcp_shop --stdio
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections import Counter
from typing import Any

from mcp import MCPError
from mcp.server.mcpserver import Context, MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse

from loopline.environment.toolservers import META_IDEMPOTENCY_KEY, META_SESSION, SESSION_LOST_CODE

server = MCPServer(
    "shop", log_level="WARNING", instructions="A shop: put items in the cart, then check out."
)
carts: dict[str, list[dict[str, Any]]] = {}
setups: dict[str, str] = {}
results: dict[str, str] = {}
received: Counter[str] = Counter()
applied: Counter[str] = Counter()
released: list[str] = []


def _meta(ctx: Context) -> dict[str, Any]:
    return dict(ctx.request_context.meta or {})


def _cart(ctx: Context) -> list[dict[str, Any]]:
    session = _meta(ctx).get(META_SESSION)
    if session not in carts:
        raise MCPError(code=SESSION_LOST_CODE, message=f"no session {session!r}")
    return carts[session]


@server.tool()
async def setup(name: str, arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Open a cart for a run (the same one again for a retried setup)."""
    key = _meta(ctx)[META_IDEMPOTENCY_KEY]
    received[key] += 1
    if key not in setups:
        applied[key] += 1
        setups[key] = uuid.uuid4().hex
        carts[setups[key]] = []
    items = ", ".join(arguments.get("items", []))
    return {"prompt": f"Scenario {name}: put {items} in the cart.", "session": setups[key]}


@server.tool()
async def add_item(item: str, price: float, ctx: Context, delay: float = 0.0) -> str:
    """Put an item in the cart."""
    key = _meta(ctx)[META_IDEMPOTENCY_KEY]
    received[key] += 1
    cart = _cart(ctx)
    await asyncio.sleep(delay)
    if key not in results:
        applied[key] += 1
        cart.append({"item": item, "price": price})
        results[key] = f"added {item}; the cart holds {len(cart)} items"
    return results[key]


@server.tool()
async def view_cart(ctx: Context) -> list[dict[str, Any]]:
    """What is in the cart."""
    received[_meta(ctx)[META_IDEMPOTENCY_KEY]] += 1
    return _cart(ctx)


@server.tool()
async def empty_cart(ctx: Context) -> str:
    """Throw everything out of the cart (the tests exclude this one)."""
    received[_meta(ctx)[META_IDEMPOTENCY_KEY]] += 1
    _cart(ctx).clear()
    return "the cart is empty"


@server.tool()
async def evaluate(
    name: str, arguments: dict[str, Any], answer: str | None, stop_reason: str, ctx: Context
) -> dict[str, Any]:
    """1 when the cart holds exactly the scenario's items."""
    cart = _cart(ctx)
    wanted = sorted(arguments.get("items", []))
    got = sorted(entry["item"] for entry in cart)
    return {"reward": 1.0 if got == wanted else 0.0, "details": {"cart": got, "answer": answer}}


@server.tool()
async def teardown(name: str, ctx: Context) -> str:
    """Release the run's cart."""
    session = _meta(ctx).get(META_SESSION)
    carts.pop(session or "", None)
    released.append(session or "")
    return "released"


@server.custom_route("/stats", methods=["GET"])  # type: ignore[untyped-decorator]  # the SDK leaves it untyped
async def stats(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "received": dict(received),
            "applied": dict(applied),
            "sessions": sorted(carts),
            "released": released,
        }
    )


@server.custom_route("/forget", methods=["POST"])  # type: ignore[untyped-decorator]  # the SDK leaves it untyped
async def forget(request: Request) -> JSONResponse:
    """Drop every cart, as a server that restarted without its state would."""
    carts.clear()
    return JSONResponse({"forgotten": True})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--stdio", action="store_true")
    options = parser.parse_args()
    if options.stdio:
        server.run("stdio")
    else:
        server.run("streamable-http", port=options.port)


if __name__ == "__main__":
    main()
