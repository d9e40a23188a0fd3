"""Per-step cost of running an episode as a Loopline run instead of a plain asyncio loop.

The same scripted episode (N-1 tool steps, then an answer) runs
  (a) as a plain in-process loop: scenario setup, scripted model, tool, evaluation;
  (a+) the same loop through the activity code and the SQLite trace store, no Temporal;
  (b) as a Loopline run: a real dev server and an in-process worker;
  (c) as a real-model-shaped Loopline run: each model step a regular activity, as a
      provider's model call is, with a model that takes 0 ms.
It prints ms per step for each (median of several repetitions), the overhead per step of (b)
over (a) and over (a+), and the Temporal history size of 100- and 500-step runs.

    python bench/step_overhead.py [--steps 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import BaseModel
from temporalio.testing import ActivityEnvironment

from activities.agent_step import AgentStepActivities
from activities.evaluation import EvaluationActivities
from activities.model_calls import ModelCaller
from activities.model_step import ModelActivities
from activities.providers import Ask
from activities.providers.scripted import ScriptedModel
from activities.scenario import ScenarioActivities
from activities.tools import ToolActivities
from bench.stack import (
    ARGS,
    ENVIRONMENT,
    SCENARIO,
    create_run,
    episode,
    history_bytes,
    loopline_run,
    loopline_worker,
    tuned_dev_server,
)
from loopline.environment import Outcome, ToolContext
from loopline.environment.registry import Registry
from loopline.models import Message, RunStatus, Script, StopReason
from loopline.pricing import PriceTable
from loopline.secrets import SecretBox
from loopline.settings import DEFAULT_ENVIRONMENT_MODULES
from loopline.store import TraceStore, open_stores
from workflows.contract.payloads import (
    AgentStepInput,
    EvaluateInput,
    TeardownInput,
)


async def plain_loop(registry: Registry, script: Script) -> float:
    environment = registry.environment(ENVIRONMENT)
    scenario = registry.scenario(ENVIRONMENT, SCENARIO)
    model = ScriptedModel(script)
    tools = [tool.info() for tool in environment.tools.values()]
    started = time.perf_counter()
    setup = await scenario.run_setup(ARGS)
    messages = [Message(role="user", content=setup.prompt)]

    async def conversation() -> list[Message]:
        return messages

    for step in range(1, len(script.steps) + 1):
        reply = (await model.complete(Ask(conversation, tools, step))).message
        messages.append(reply)
        if not reply.tool_calls:
            break
        for call in reply.tool_calls:
            context = ToolContext(run_id="plain", step=step, call_id=call.id)
            content = await environment.tools[call.name].invoke(call.arguments, None, context)
            messages.append(Message(role="tool", content=content, tool_call_id=call.id))
    outcome: Outcome[BaseModel] = Outcome(
        args=ARGS,
        state=None,
        answer=messages[-1].content,
        trajectory=messages,
        stop_reason=StopReason.answered,
    )
    reward = await scenario.run_evaluation(outcome)
    assert reward.value == 1.0
    return time.perf_counter() - started


def bench_caller(store: TraceStore) -> ModelCaller:
    return ModelCaller(store, SecretBox(Fernet.generate_key()), PriceTable.load(None))


def local_activity_context() -> ActivityEnvironment:
    """The activities' context as a local activity has it, without a worker: the same code
    runs (heartbeats included, which a local activity skips)."""
    context = ActivityEnvironment()
    context.info = replace(ActivityEnvironment.default_info(), is_local=True)
    return context


async def store_loop(store: TraceStore, registry: Registry, script: Script) -> float:
    """The activities a run's workflow calls, called in turn as local activities: setup,
    each step (the model and its tool calls in one), evaluation, teardown."""
    scenario = ScenarioActivities(store, registry)
    caller = bench_caller(store)
    evaluator = EvaluationActivities(store, registry, caller)
    steps = AgentStepActivities(
        ModelActivities(store, registry, caller), ToolActivities(store, registry)
    )
    run = await create_run(store, script)
    activity = local_activity_context()
    started = time.perf_counter()
    await activity.run(scenario.setup, run)
    for step in range(1, run.max_steps + 1):
        request = AgentStepInput(run_id=run.run_id, step=step, model=run.model)
        if not (await activity.run(steps.agent_step, request)).reply.tool_calls:
            break
    evaluation = await activity.run(
        evaluator.evaluate, EvaluateInput(run_id=run.run_id, stop_reason=StopReason.answered)
    )
    teardown = TeardownInput(
        run_id=run.run_id,
        status=RunStatus.completed,
        stop_reason=StopReason.answered,
        steps=run.max_steps,
    )
    await activity.run(scenario.teardown, teardown)
    assert evaluation.reward == 1.0
    return time.perf_counter() - started


def per_step_ms(seconds: list[float], steps: int) -> float:
    return statistics.median(seconds) / steps * 1000


async def main(steps: int, repeats: int) -> None:
    registry = Registry.from_modules(DEFAULT_ENVIRONMENT_MODULES)
    script = episode(steps)
    with tempfile.TemporaryDirectory() as folder:
        async with open_stores(f"sqlite:///{Path(folder) / 'bench.db'}") as stores:
            store = stores.runs
            plain = [await plain_loop(registry, script) for _ in range(repeats)]
            stored = [await store_loop(store, registry, script) for _ in range(repeats)]
            server = await tuned_dev_server()
            try:
                async with loopline_worker(server.client, stores, registry):
                    await loopline_run(server.client, store, episode(5))  # warm-up
                    timed, shaped = [], []
                    for _ in range(repeats):
                        timed.append(await loopline_run(server.client, store, script))
                        regular = await loopline_run(
                            server.client, store, script, model_is_local=False
                        )
                        shaped.append(regular[0])
                    _, long_id = await loopline_run(server.client, store, episode(500))
                    sizes = {
                        steps: await history_bytes(server.client, timed[0][1]),
                        500: await history_bytes(server.client, long_id),
                    }
            finally:
                await server.shutdown()
    report(steps, plain, stored, [seconds for seconds, _ in timed], shaped, sizes)


def report(
    steps: int,
    plain: list[float],
    stored: list[float],
    run: list[float],
    shaped: list[float],
    sizes: dict[int, int],
) -> None:
    a, a_store, b, c = (per_step_ms(x, steps) for x in (plain, stored, run, shaped))
    print(f"{steps}-step scripted episode, median of {len(run)} runs, ms per step:")
    print(f"  (a)  plain asyncio loop                    {a:8.3f}")
    print(f"  (a+) activity code + SQLite store, no Temporal {a_store:6.3f}")
    print(f"  (b)  Loopline run (dev server, worker)     {b:8.3f}")
    print(f"  (c)  real-model-shaped run, 0 ms model     {c:8.3f}  (target <= 15)")
    print(f"  overhead per step, (b) - (a):              {b - a:8.3f}  (target <= 5)")
    print(f"  of which Temporal, (b) - (a+):             {b - a_store:8.3f}")
    print(f"  ratio (b) / (a): {b / a:.0f}x   (b) / (a+): {b / a_store:.2f}x")
    for count, size in sorted(sizes.items()):
        print(f"  history of a {count}-step run: {size:,} bytes ({size / count:,.0f} per step)")
    print(f"  500-step history under 2 MB: {'yes' if sizes[500] < 2_000_000 else 'NO'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    asyncio.run(main(options.steps, options.repeats))
    sys.stdout.flush()
    os._exit(0)  # temporalio/sdk-python#300: avoid the crash at interpreter exit
