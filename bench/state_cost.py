"""What a large environment state costs a tool call.

An environment whose state is a ~1.5 MB pydantic database (users, orders, products, the
shape of a retail benchmark's) has three tools: one not handed the state, one declared
read-only that looks an order up, and one that changes an order (orders spread over the
database). Each runs N times in a run of its own through the real tool activity (as a local
activity runs it, without a worker) against a real trace store: SQLite in a temporary
folder, and PostgreSQL when one answers at LOOPLINE_TEST_POSTGRES (default
postgresql+psycopg://postgres@127.0.0.1:5432/test, in a scratch database dropped
afterwards). The baseline is the same stateless tool of an environment with no state. It
prints the median ms per call, the ms each adds over the baseline (the goal: read-only < 5,
write < 20), the first call of a run on a worker (which reads and validates the state) and
the memory one cached state holds. On a commit without `read_only` the read-only tool is an
ordinary one. One run's figures on a shared machine: nothing is asserted.

    python -m bench.state_cost [--calls 30]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.testing import ActivityEnvironment

from activities.tools import ToolActivities
from loopline.environment import Environment
from loopline.environment.registry import Registry
from loopline.models import EventType, Message, RunSpec, ToolCall
from loopline.store import TraceStore, open_stores
from loopline.store.rows import NewRun
from tests.loopline.store.test_trace import scratch_postgres_database
from workflows.contract.names import SETUP_KEY, model_key
from workflows.contract.payloads import ToolCallInput

USERS, ORDERS, PRODUCTS, VARIANTS = 1000, 2200, 100, 20


class Address(BaseModel):
    address1: str
    address2: str
    city: str
    country: str
    state: str
    zip: str


class Variant(BaseModel):
    item_id: str
    options: dict[str, str]
    available: bool
    price: float


class Product(BaseModel):
    name: str
    product_id: str
    variants: dict[str, Variant]


class User(BaseModel):
    user_id: str
    name: dict[str, str]
    address: Address
    email: str
    orders: list[str]


class Order(BaseModel):
    order_id: str
    user_id: str
    address: Address
    items: list[dict[str, str | float]]
    status: str
    payment_history: list[dict[str, str | float]]


class Database(BaseModel):
    products: dict[str, Product]
    users: dict[str, User]
    orders: dict[str, Order]


def address(index: int) -> Address:
    return Address(
        address1=f"{index} Main St",
        address2=f"Suite {index}",
        city="Springfield",
        country="USA",
        state="IL",
        zip=f"{60000 + index}",
    )


def database() -> Database:
    products = {
        f"p{p}": Product(
            name=f"Product {p}",
            product_id=f"p{p}",
            variants={
                f"v{p}_{v}": Variant(
                    item_id=f"v{p}_{v}",
                    options={"color": "red", "size": str(v)},
                    available=v % 2 == 0,
                    price=10.0 + v,
                )
                for v in range(VARIANTS)
            },
        )
        for p in range(PRODUCTS)
    }
    users = {
        f"u{u}": User(
            user_id=f"u{u}",
            name={"first": f"F{u}", "last": f"L{u}"},
            address=address(u),
            email=f"u{u}@example.com",
            orders=[f"o{u * 2}", f"o{u * 2 + 1}"],
        )
        for u in range(USERS)
    }
    orders = {
        f"o{o}": Order(
            order_id=f"o{o}",
            user_id=f"u{o // 2}",
            address=address(o),
            items=[
                {"name": "Product 1", "product_id": "p1", "item_id": f"v1_{k}", "price": 11.0}
                for k in range(3)
            ],
            status="pending",
            payment_history=[{"transaction_type": "payment", "amount": 33.0, "method": f"c{o}"}],
        )
        for o in range(ORDERS)
    }
    return Database(products=products, users=users, orders=orders)


shop = Environment("bench-state-shop", state=Database)
plain = Environment("bench-stateless-shop")


@plain.tool
@shop.tool
def ping(order_id: str) -> str:
    return order_id


def get_order(db: Database, order_id: str) -> str:
    return db.orders[order_id].status


# On a commit before `read_only`, the read-only tool is registered as an ordinary one.
if "read_only" in inspect.signature(shop.tool).parameters:
    shop.tool(read_only=True)(get_order)
else:
    shop.tool(get_order)


@shop.tool
def cancel_order(db: Database, order_id: str) -> str:
    db.orders[order_id].status = f"cancelled {uuid.uuid4().hex[:6]}"
    return "cancelled"


# What is timed: (environment, tool); the first has no state and is what the others add to.
KINDS = {
    "no state": (plain, "ping"),
    "not handed the state": (shop, "ping"),
    "read-only": (shop, "get_order"),
    "write": (shop, "cancel_order"),
}
BASELINE = "no state"


@dataclass(frozen=True)
class Timing:
    first_ms: float
    median_ms: float


def local_activity() -> ActivityEnvironment:
    context = ActivityEnvironment()
    context.info = replace(ActivityEnvironment.default_info(), is_local=True)
    return context


async def timed_run(store: TraceStore, environment: Environment, tool: str, calls: int) -> Timing:
    """A run whose setup left the database and whose one step calls `tool` `calls` times
    on orders spread over the database; each call timed through one worker's activity."""
    run_id = uuid.uuid4().hex
    spec = RunSpec(
        environment=environment.name, scenario="s", args={}, model="scripted", max_steps=2
    )
    await store.create_run(NewRun(run_id, run_id, spec))
    prompt = Message(role="user", content="shop").model_dump()
    state = database() if environment.state_type is not None else None
    await store.record(run_id, SETUP_KEY, EventType.message, prompt, state=state)
    requested = [
        ToolCall(id=f"c{index}", name=tool, arguments={"order_id": f"o{index * 733 % ORDERS}"})
        for index in range(calls)
    ]
    reply = Message(role="assistant", tool_calls=requested).model_dump()
    await store.record(run_id, model_key(1), EventType.message, reply)
    worker = ToolActivities(store, Registry([shop, plain]))
    activity = local_activity()
    seconds = []
    for index in range(calls):
        request = ToolCallInput(run_id=run_id, step=1, call_id=f"c{index}")
        started = time.perf_counter()
        await activity.run(worker.call_tool, request)
        seconds.append(time.perf_counter() - started)
    return Timing(seconds[0] * 1000, statistics.median(seconds[1:]) * 1000)


@contextmanager
def postgres_url() -> Iterator[str | None]:
    try:
        with scratch_postgres_database() as url:
            yield url
    except pytest.skip.Exception as skipped:
        print(f"PostgreSQL: {skipped.msg}")
        yield None


@asynccontextmanager
async def stores() -> AsyncIterator[dict[str, TraceStore]]:
    async with AsyncExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        found = {"SQLite": f"sqlite:///{Path(folder) / 'bench.db'}"}
        postgres = stack.enter_context(postgres_url())
        if postgres is not None:
            found["PostgreSQL"] = postgres
        opened = {}
        for name, url in found.items():
            opened[name] = (await stack.enter_async_context(open_stores(url))).runs
        yield opened


def held_mb(make: Any) -> float:
    """The memory the value `make()` returns holds, in MB."""
    gc.collect()
    tracemalloc.start()
    value = make()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del value
    return held / 1e6


def report_memory() -> None:
    """What one entry of a worker's state cache holds: the state's JSON and its model."""
    text = database().model_dump_json()
    json_mb = len(text) / 1e6
    model_mb = held_mb(lambda: Database.model_validate_json(text))
    print(
        f"one cached state: its JSON {json_mb:.2f} MB and its model {model_mb:.1f} MB, "
        f"{(json_mb + model_mb) / json_mb:.0f}x the JSON"
    )


async def main(calls: int) -> None:
    print(f"state: {len(database().model_dump_json()) / 1e6:.2f} MB of JSON; {calls} calls a run")
    async with stores() as opened:
        for name, store in opened.items():
            timings = {
                kind: await timed_run(store, environment, tool, calls)
                for kind, (environment, tool) in KINDS.items()
            }
            base = timings[BASELINE].median_ms
            print(f"{name}: ms per call (median), added over {BASELINE}, first call of the run")
            for kind, timing in timings.items():
                added = "" if kind == BASELINE else f"+{timing.median_ms - base:7.2f}"
                print(
                    f"  {kind:21} {timing.median_ms:8.2f}  {added:>8}  first {timing.first_ms:7.2f}"
                )
    report_memory()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=30)
    options = parser.parse_args()
    asyncio.run(main(options.calls))
