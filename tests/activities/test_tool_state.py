"""The state around a tool call, through the tool activity and a real trace store: read-only
calls leave it alone, a write is one new version committed with its result, a worker's
cached state is used only while it is of the stored version, and a failed call's state is
rolled back or kept as the tool says."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.testing import ActivityEnvironment

from activities.tools import ToolActivities
from loopline.environment import Environment, ToolError
from loopline.environment.changes import text_splice
from loopline.environment.registry import Registry
from loopline.models import EventType, Message, RunSpec, ToolCall
from loopline.store import TraceStore
from loopline.store.errors import StateConflictError
from loopline.store.rows import MAX_STATE_PATCHES, NewRun, StatePatch, StateWrite
from workflows.contract.names import SETUP_KEY, model_key, tool_key
from workflows.contract.payloads import ToolCallInput


class Shelf(BaseModel):
    items: list[str]


shop = Environment("state-shop", state=Shelf)
ran: list[str] = []


@shop.tool(read_only=True)
def count(shelf: Shelf) -> int:
    return len(shelf.items)


@shop.tool
def add(shelf: Shelf, item: str) -> str:
    ran.append(item)
    shelf.items.append(item)
    return "added"


@shop.tool
def touch(shelf: Shelf) -> str:
    shelf.items = list(shelf.items)  # the same JSON: nothing to write
    return "touched"


@shop.tool
def add_then_fail(shelf: Shelf, item: str) -> str:
    shelf.items.append(item)
    raise ToolError("out of stock")


@shop.tool(on_error="keep")
def add_then_fail_keeping(shelf: Shelf, item: str) -> str:
    shelf.items.append(item)
    raise ToolError("out of stock")


@shop.tool(on_error="keep")
def add_then_crash_keeping(shelf: Shelf, item: str) -> str:
    shelf.items.append(item)
    raise RuntimeError("disk on fire")


REGISTRY = Registry([shop])


async def new_run(store: TraceStore, *calls: tuple[str, dict[str, str]]) -> str:
    """A run whose setup left a shelf with one item and whose step 1 asks for `calls`."""
    run_id = uuid.uuid4().hex
    spec = RunSpec(environment=shop.name, scenario="s", args={}, model="scripted", max_steps=5)
    await store.create_run(NewRun(run_id, run_id, spec))
    prompt = Message(role="user", content="shop").model_dump()
    await store.record(run_id, SETUP_KEY, EventType.message, prompt, state=Shelf(items=["pear"]))
    tool_calls = [
        ToolCall(id=f"c{index}", name=name, arguments=arguments)
        for index, (name, arguments) in enumerate(calls)
    ]
    reply = Message(role="assistant", tool_calls=tool_calls).model_dump()
    await store.record(run_id, model_key(1), EventType.message, reply)
    return run_id


async def stored(store: TraceStore, run_id: str) -> tuple[int, Any]:
    version, text = await store.state_text(run_id)
    return version, json.loads(text) if text is not None else None


async def call(worker: ToolActivities, run_id: str, index: int) -> str:
    request = ToolCallInput(run_id=run_id, step=1, call_id=f"c{index}")
    await ActivityEnvironment().run(worker.call_tool, request)
    event = await worker.store.event_by_key(run_id, tool_key(1, f"c{index}"))
    assert event is not None
    return str(event.data["content"])


async def test_a_read_only_or_unchanging_call_writes_no_state(store: TraceStore) -> None:
    run_id = await new_run(store, ("count", {}), ("touch", {}))
    worker = ToolActivities(store, REGISTRY)
    assert await call(worker, run_id, 0) == "1"
    assert await call(worker, run_id, 1) == "touched"
    assert await stored(store, run_id) == (1, {"items": ["pear"]})
    events = await store.events(run_id)
    assert all("state_changes" not in event.data for event in events)


async def test_a_write_is_one_new_version_and_a_retry_writes_nothing(store: TraceStore) -> None:
    run_id = await new_run(store, ("add", {"item": "fig"}), ("count", {}))
    worker = ToolActivities(store, REGISTRY)
    ran.clear()
    assert await call(worker, run_id, 0) == "added"
    assert await call(worker, run_id, 0) == "added"  # the retry finds the recorded result
    assert ran == ["fig"]
    assert await stored(store, run_id) == (2, {"items": ["pear", "fig"]})
    event = await store.event_by_key(run_id, tool_key(1, "c0"))
    assert event is not None
    assert event.data["state_changes"]["changes"] == [
        {"path": "/items/1", "op": "add", "before": None, "after": "fig"}
    ]
    assert await call(worker, run_id, 1) == "2"


async def test_a_worker_reads_the_state_another_worker_wrote_after_it(store: TraceStore) -> None:
    run_id = await new_run(store, ("count", {}), ("add", {"item": "fig"}), ("count", {}))
    first, second = ToolActivities(store, REGISTRY), ToolActivities(store, REGISTRY)
    assert await call(first, run_id, 0) == "1"  # the first worker now holds version 1
    await call(second, run_id, 1)
    assert await call(first, run_id, 2) == "2"


async def test_a_write_from_an_outdated_version_is_refused(store: TraceStore) -> None:
    run_id = await new_run(store)
    stale = StateWrite(Shelf(items=[]).model_dump_json(), base_version=0)
    with pytest.raises(StateConflictError, match="version 1, not 0"):
        await store.record(run_id, "late", EventType.log, {}, state=stale)
    assert await store.event_by_key(run_id, "late") is None
    assert await stored(store, run_id) == (1, {"items": ["pear"]})


async def test_a_failed_call_rolls_its_changes_back_unless_the_tool_keeps_them(
    store: TraceStore,
) -> None:
    run_id = await new_run(
        store,
        ("add_then_fail", {"item": "fig"}),
        ("count", {}),
        ("add_then_fail_keeping", {"item": "fig"}),
        ("add_then_crash_keeping", {"item": "kiwi"}),
        ("count", {}),
    )
    worker = ToolActivities(store, REGISTRY)
    assert await call(worker, run_id, 0) == "out of stock"
    # Neither the store nor this worker's cached state has the rolled-back change.
    assert await stored(store, run_id) == (1, {"items": ["pear"]})
    assert await call(worker, run_id, 1) == "1"
    assert await call(worker, run_id, 2) == "out of stock"
    assert "disk on fire" in await call(worker, run_id, 3)
    assert await stored(store, run_id) == (3, {"items": ["pear", "fig", "kiwi"]})
    assert await call(worker, run_id, 4) == "3"


async def test_patched_versions_read_back_whole_before_and_after_they_are_folded(
    store: TraceStore,
) -> None:
    run_id = await new_run(store)
    shelf = Shelf(items=["pear"])
    text = shelf.model_dump_json()
    for version in range(1, MAX_STATE_PATCHES + 4):
        shelf.items.append(f"fig {version} é \ue000")
        after = shelf.model_dump_json()
        start, before_end, after_end = text_splice(text, after)
        patch = StatePatch(start, before_end - start, after[start:after_end])
        write = StateWrite(after, base_version=version, patch=patch)
        await store.record(run_id, f"write-{version}", EventType.log, {}, state=write)
        assert await store.state_text(run_id) == (version + 1, after)
        text = after
