"""What the provider layer adds to a step, against the offline scripted model.

Plays the same 20-step trivia episode (19 lookups, then the answer) through the real
model-step and tool activities and the SQLite trace store, once per model:

- scripted: the offline model, no HTTP;
- openai / anthropic, JSON and streamed: the real SDKs against the local wire-format server
  of the tests (tests/upstream.py), served on the same event loop.

The activities run in the SDK's ActivityEnvironment as local activities (no Temporal
server), so the difference is the provider layer itself: building the client, translating
the conversation, the HTTP round trip, parsing, pricing, recording the extra facts.
The local server's own work is inside the figure; a real provider adds its latency on top.

    python -m bench.provider_overhead [--steps 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.fernet import Fernet
from temporalio.testing import ActivityEnvironment

from activities.model_calls import ModelCaller
from activities.model_step import ModelActivities
from activities.scenario import ScenarioActivities
from activities.tools import ToolActivities
from loopline.environment.registry import Registry
from loopline.models import (
    ModelConfig,
    Provider,
    RunSpec,
    Script,
    ScriptedStep,
    ScriptedToolCall,
    parse_model,
)
from loopline.pricing import PriceTable
from loopline.secrets import SecretBox
from loopline.settings import DEFAULT_ENVIRONMENT_MODULES
from loopline.store import TraceStore, open_stores
from loopline.store.rows import NewRun
from tests.upstream import Reply, Upstream
from workflows.contract.payloads import RunInput, StepRef, ToolCallInput

ARGS = {"country": "Peru"}


def script(steps: int) -> Script:
    lookup = ScriptedStep(tool_calls=[ScriptedToolCall(name="lookup", arguments={"topic": "Peru"})])
    return Script(steps=[lookup] * (steps - 1) + [ScriptedStep(content="Lima")])


def models(upstream: Upstream) -> dict[str, ModelConfig]:
    openai = ModelConfig(model="gpt-4o", provider=Provider.custom, base_url=upstream.openai_url)
    anthropic = ModelConfig(
        model="claude-sonnet-4-5", provider=Provider.anthropic, base_url=upstream.anthropic_url
    )
    return {
        "scripted": parse_model("scripted"),
        "openai json": openai.model_copy(update={"stream": False}),
        "openai streamed": openai,
        "anthropic json": anthropic.model_copy(update={"stream": False}),
        "anthropic streamed": anthropic,
    }


class Episode:
    def __init__(self, store: TraceStore, registry: Registry, upstream: Upstream) -> None:
        caller = ModelCaller(store, SecretBox(Fernet.generate_key()), PriceTable.load(None))
        self.store = store
        self.upstream = upstream
        self.scenario = ScenarioActivities(store, registry)
        self.model = ModelActivities(store, registry, caller)
        self.tools = ToolActivities(store, registry)
        self.environment = ActivityEnvironment()
        self.environment.info = dataclasses.replace(self.environment.info, is_local=True)

    async def play(self, config: ModelConfig, steps: int) -> float:
        """Seconds for the agent loop of one episode (setup and evaluation excluded)."""
        run_id = uuid.uuid4().hex
        config = config.model_copy(update={"model": f"{config.model}-{run_id[:8]}"})
        lookup = Reply(tool_calls=[("lookup", '{"topic": "Peru"}')])
        self.upstream.plan(config.model, *[lookup] * (steps - 1), Reply(text="Lima"))
        spec = RunSpec(
            environment="trivia",
            scenario="capital",
            args=ARGS,
            model=config.label,
            llm=config,
            script=script(steps),
            max_steps=steps,
        )
        await self.store.create_run(NewRun(run_id, run_id, spec))
        run = RunInput(
            run_id=run_id,
            environment="trivia",
            scenario="capital",
            model=config.label,
            max_steps=steps,
        )
        await self.environment.run(self.scenario.setup, run)
        started = time.perf_counter()
        for step in range(1, steps + 1):
            ref = StepRef(run_id=run_id, step=step, model=config.label)
            reply = await self.environment.run(self.model.model_step, ref)
            for call in reply.tool_calls:
                request = ToolCallInput(run_id=run_id, step=step, call_id=call.id)
                await self.environment.run(self.tools.call_tool, request)
        elapsed = time.perf_counter() - started
        assert (await self.store.get_run(run_id)).answer == "Lima"
        return elapsed


async def main(steps: int, repeats: int) -> None:
    # The local server takes any key; the SDKs want one to be set.
    os.environ.setdefault("ANTHROPIC_API_KEY", "bench")
    registry = Registry.from_modules(DEFAULT_ENVIRONMENT_MODULES)
    upstream = Upstream()
    with tempfile.TemporaryDirectory() as folder:
        async with (
            upstream.serving(),
            open_stores(f"sqlite:///{Path(folder) / 'bench.db'}") as stores,
        ):
            episode = Episode(stores.runs, registry, upstream)
            configs = models(upstream)
            for config in configs.values():
                await episode.play(config, 3)  # warm-up: imports, connections, caches
            timings = {
                name: [await episode.play(config, steps) for _ in range(repeats)]
                for name, config in configs.items()
            }
    per_step = {name: statistics.median(t) / steps * 1000 for name, t in timings.items()}
    base = per_step["scripted"]
    print(f"{steps}-step episode, median of {repeats}, ms per step (model step + tool call):")
    for name, ms in per_step.items():
        print(
            f"  {name:<20} {ms:7.2f} ms   x{ms / base:4.2f}   provider layer +{ms - base:6.2f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    asyncio.run(main(options.steps, options.repeats))
