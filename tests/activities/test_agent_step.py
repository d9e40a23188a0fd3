"""A step of the scripted model and in-process tools as one activity, through a real trace
store: its reply and tool calls are committed together, each call sees the state the one
before left, and its retries neither lose nor repeat a call."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel
from temporalio.testing import ActivityEnvironment

from activities.agent_step import AgentStepActivities
from activities.model_calls import ModelCaller
from activities.model_step import ModelActivities, step_result
from activities.tools import ToolActivities
from loopline.environment import Environment, ToolError
from loopline.environment.registry import Registry
from loopline.models import (
    EventType,
    Message,
    ModelConfig,
    Provider,
    RunSpec,
    Script,
    ScriptedStep,
    ScriptedToolCall,
    ToolCall,
    ToolInfo,
)
from loopline.outbound import OutboundPolicy
from loopline.pricing import PriceTable
from loopline.secrets import SecretBox
from loopline.store import TraceStore
from loopline.store.rows import NewRun
from tests.upstream import Reply, Upstream
from workflows.contract.names import SETUP_KEY, model_key, tool_key
from workflows.contract.payloads import AgentStepInput, AgentStepResult, StepRef, ToolCallInput


class Basket(BaseModel):
    items: list[str]


class WorkerDied(BaseException):
    """What a worker's death looks like to the step: the attempt stops where it is."""


basket = Environment("step-basket", state=Basket)
ran: list[str] = []
dying: set[str] = set()


@basket.tool(read_only=True)
def count(basket: Basket) -> int:
    return len(basket.items)


@basket.tool
def add(basket: Basket, item: str) -> str:
    ran.append(item)
    if item in dying:
        dying.discard(item)
        raise WorkerDied
    basket.items.append(item)
    return f"added {item}"


@basket.tool
def add_then_fail(basket: Basket, item: str) -> str:
    basket.items.append(item)
    raise ToolError("out of stock")


@basket.tool(stop=True)
def checkout(basket: Basket) -> str:
    return f"paid for {len(basket.items)}"


REGISTRY = Registry([basket])
ASK_USER = ToolInfo(name="ask_user", description="Ask the user.", parameters={"type": "object"})


def as_local_activity() -> ActivityEnvironment:
    """The context the step has on a worker, where it is always a local activity."""
    context = ActivityEnvironment()
    context.info = replace(ActivityEnvironment.default_info(), is_local=True)
    return context


def worker(store: TraceStore) -> AgentStepActivities:
    box, prices = SecretBox(Fernet.generate_key()), PriceTable.load(None)
    # Loopback, where the test's model server listens, is let through as `loopline up` does.
    caller = ModelCaller(store, box, prices, OutboundPolicy(local=True))
    return AgentStepActivities(
        ModelActivities(store, REGISTRY, caller), ToolActivities(store, REGISTRY)
    )


async def new_run(
    store: TraceStore, *calls: tuple[str, dict[str, str]], llm: ModelConfig | None = None
) -> str:
    """A run whose setup left a basket with one item and whose script's step 1 makes `calls`
    (or whose model is `llm`)."""
    run_id = uuid.uuid4().hex
    step = ScriptedStep(
        tool_calls=[
            ScriptedToolCall(id=f"c{index}", name=name, arguments=arguments)
            for index, (name, arguments) in enumerate(calls)
        ]
    )
    spec = RunSpec(
        environment=basket.name,
        scenario="s",
        args={},
        model="scripted" if llm is None else llm.model,
        script=Script(steps=[step]),
        client_tools=[ASK_USER],
        **({} if llm is None else {"llm": llm}),
        max_steps=5,
    )
    await store.create_run(NewRun(run_id, run_id, spec))
    prompt = Message(role="user", content="shop").model_dump()
    await store.record(run_id, SETUP_KEY, EventType.message, prompt, state=Basket(items=["pear"]))
    return run_id


async def step(
    steps: AgentStepActivities,
    run_id: str,
    stop_if_repeated: str | None = None,
    context: ActivityEnvironment | None = None,
) -> AgentStepResult:
    request = AgentStepInput(
        run_id=run_id, step=1, model="scripted", stop_if_repeated=stop_if_repeated
    )
    return await (context or as_local_activity()).run(steps.agent_step, request)


async def results(store: TraceStore, run_id: str) -> dict[str, str]:
    """What each recorded call of step 1 returned, by call id."""
    events = await store.events(run_id)
    prefix = tool_key(1, "")
    return {
        event.key.removeprefix(prefix): str(event.data["content"])
        for event in events
        if event.key.startswith(prefix)
    }


async def stored(store: TraceStore, run_id: str) -> tuple[int, Any]:
    version, text = await store.state_text(run_id)
    return version, json.loads(text) if text is not None else None


@pytest.fixture(autouse=True)
def fresh_calls() -> None:
    ran.clear()
    dying.clear()


async def test_a_step_is_one_commit_of_its_reply_and_calls_each_on_the_state_left_before(
    store: TraceStore,
) -> None:
    run_id = await new_run(
        store, ("add", {"item": "fig"}), ("add", {"item": "kiwi"}), ("count", {})
    )
    commits: list[str] = []
    store.on_write(commits.append)
    outcome = await step(worker(store), run_id)
    assert commits.count(run_id) == 1
    assert [call.name for call in outcome.reply.tool_calls] == ["add", "add", "count"]
    assert (outcome.tools_ran, outcome.stopped) == (True, False)
    assert await results(store, run_id) == {"c0": "added fig", "c1": "added kiwi", "c2": "3"}
    # One version per writing call, as when each call is an activity of its own.
    assert await stored(store, run_id) == (3, {"items": ["pear", "fig", "kiwi"]})
    keys = [event.key for event in await store.events(run_id)]
    assert keys == [SETUP_KEY, model_key(1), *(tool_key(1, f"c{index}") for index in range(3))]


async def test_a_failed_call_rolls_back_only_its_own_change(store: TraceStore) -> None:
    run_id = await new_run(
        store, ("add", {"item": "fig"}), ("add_then_fail", {"item": "plum"}), ("count", {})
    )
    await step(worker(store), run_id)
    assert await results(store, run_id) == {"c0": "added fig", "c1": "out of stock", "c2": "2"}
    assert await stored(store, run_id) == (2, {"items": ["pear", "fig"]})


async def test_a_stop_tool_ends_the_step_and_the_calls_after_it_do_not_run(
    store: TraceStore,
) -> None:
    run_id = await new_run(
        store, ("add", {"item": "fig"}), ("checkout", {}), ("add", {"item": "kiwi"})
    )
    outcome = await step(worker(store), run_id)
    assert outcome.stopped
    assert ran == ["fig"]
    assert await results(store, run_id) == {"c0": "added fig", "c1": "paid for 2"}
    assert (await store.get_run(run_id)).answer == "paid for 2"


async def test_the_callers_tools_and_a_looping_repeat_are_not_run(store: TraceStore) -> None:
    run_id = await new_run(store, ("ask_user", {}), ("add", {"item": "fig"}))
    assert not (await step(worker(store), run_id)).stopped
    assert await results(store, run_id) == {"c1": "added fig"}

    repeated = Message(
        role="assistant", tool_calls=[ToolCall(id="x", name="add", arguments={"item": "fig"})]
    )
    signature = step_result(repeated).calls_signature
    looping = await new_run(store, ("add", {"item": "fig"}))
    outcome = await step(worker(store), looping, stop_if_repeated=signature)
    assert outcome.reply.calls_signature == signature
    assert await results(store, looping) == {}
    assert ran == ["fig"]


def model_step(run_id: str) -> StepRef:
    return StepRef(run_id=run_id, step=1, model="scripted")


async def test_a_retry_after_the_commit_runs_nothing_again(store: TraceStore) -> None:
    run_id = await new_run(store, ("add", {"item": "fig"}))
    steps = worker(store)
    first = await step(steps, run_id)
    assert await step(worker(store), run_id) == first
    assert ran == ["fig"]
    assert await stored(store, run_id) == (2, {"items": ["pear", "fig"]})


async def test_an_attempt_cut_short_commits_nothing_and_its_retry_runs_every_call(
    store: TraceStore,
) -> None:
    run_id = await new_run(store, ("add", {"item": "fig"}), ("add", {"item": "kiwi"}))
    dying.add("kiwi")
    with pytest.raises(WorkerDied):
        await step(worker(store), run_id)
    assert [event.key for event in await store.events(run_id)] == [SETUP_KEY]
    assert await stored(store, run_id) == (1, {"items": ["pear"]})
    await step(worker(store), run_id)
    assert ran == ["fig", "kiwi", "fig", "kiwi"]
    assert await stored(store, run_id) == (3, {"items": ["pear", "fig", "kiwi"]})


async def test_a_step_begun_as_separate_activities_runs_only_the_calls_left(
    store: TraceStore,
) -> None:
    """A run in flight when workers were upgraded: its step's reply and first call were
    recorded by the activities of their own."""
    run_id = await new_run(store, ("add", {"item": "fig"}), ("add", {"item": "kiwi"}))
    steps = worker(store)
    reply = await as_local_activity().run(steps.model.model_step, model_step(run_id))
    first = ToolCallInput(run_id=run_id, step=1, call_id="c0")
    await as_local_activity().run(steps.tools.call_tool, first)
    outcome = await step(steps, run_id)
    assert outcome.reply == reply
    assert ran == ["fig", "kiwi"]
    assert await results(store, run_id) == {"c0": "added fig", "c1": "added kiwi"}
    assert await stored(store, run_id) == (3, {"items": ["pear", "fig", "kiwi"]})


async def test_a_providers_reply_is_committed_before_its_calls_and_never_asked_for_twice(
    store: TraceStore, upstream: Upstream
) -> None:
    model = f"gpt-4o-{uuid.uuid4().hex[:8]}"
    llm = ModelConfig(
        model=model, provider=Provider.custom, base_url=upstream.openai_url, stream=False
    )
    upstream.plan(model, Reply(tool_calls=[("add", '{"item": "kiwi"}')]))
    run_id = await new_run(store, llm=llm)
    dying.add("kiwi")
    # A provider's step is a regular activity, on the task queue of its model calls.
    with pytest.raises(WorkerDied):
        await step(worker(store), run_id, context=ActivityEnvironment())
    keys = [event.key for event in await store.events(run_id)]
    assert keys == [SETUP_KEY, model_key(1)]
    outcome = await step(worker(store), run_id, context=ActivityEnvironment())
    assert [call.name for call in outcome.reply.tool_calls] == ["add"]
    assert len(upstream.requests[model]) == 1
    assert ran == ["kiwi", "kiwi"]
    assert await stored(store, run_id) == (2, {"items": ["pear", "kiwi"]})
    assert (await store.get_run(run_id)).usage.model_calls == 1


async def test_of_two_overlapping_attempts_the_reply_recorded_first_is_the_step(
    store: TraceStore, upstream: Upstream
) -> None:
    """An attempt timed out while still running and its retry began: both asked the model,
    the retry's answer came first. The first reply recorded is the step's, for both."""
    model = f"gpt-4o-{uuid.uuid4().hex[:8]}"
    llm = ModelConfig(
        model=model, provider=Provider.custom, base_url=upstream.openai_url, stream=False
    )
    retry_done = asyncio.Event()
    late = Reply(tool_calls=[("add", '{"item": "kiwi"}')], held=retry_done)
    upstream.plan(model, late, Reply(tool_calls=[("add", '{"item": "fig"}')]))
    run_id = await new_run(store, llm=llm)
    first = asyncio.create_task(step(worker(store), run_id, context=ActivityEnvironment()))
    async with asyncio.timeout(30):
        await upstream.asked(model)
    retry = await step(worker(store), run_id, context=ActivityEnvironment())
    retry_done.set()
    assert await first == retry
    assert [call.name for call in retry.reply.tool_calls] == ["add"]
    assert len(upstream.requests[model]) == 2
    assert ran == ["fig"]
    assert await results(store, run_id) == {"call_0": "added fig"}
    assert await stored(store, run_id) == (2, {"items": ["pear", "fig"]})
