"""A scripted Loopline episode through the real stack, shared by the benches that time it.

The episode is N-1 `lookup` tool steps of the trivia environment, then the answer. A run of
it is created in the trace store as the API creates one and executed as a RunWorkflow on a
dev server tuned as `loopline up` tunes it, by an in-process worker built as `loopline
worker` builds it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cryptography.fernet import Fernet
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from loopline.environment.registry import Registry
from loopline.models import RunSpec, Script, ScriptedStep, ScriptedToolCall
from loopline.secrets import SecretBox
from loopline.store import Stores, TraceStore
from loopline.store.rows import NewRun
from tests.harness import dev_server
from workers.cli.up import DEV_SERVER_TUNING
from workers.worker import WorkerParts, build_worker
from workflows.contract.names import initial_search_attributes, run_workflow_id
from workflows.contract.payloads import RunInput
from workflows.run import RunWorkflow

ENVIRONMENT, SCENARIO, ARGS = "trivia", "capital", {"country": "Peru"}
TASK_QUEUE = "bench"


def episode(steps: int) -> Script:
    lookup = ScriptedStep(tool_calls=[ScriptedToolCall(name="lookup", arguments={"topic": "Peru"})])
    return Script(steps=[lookup] * (steps - 1) + [ScriptedStep(content="Lima")])


async def create_run(store: TraceStore, script: Script, *, model_is_local: bool = True) -> RunInput:
    """A run of `script`; with `model_is_local` false, its model steps are regular
    activities, as a provider's are: a real-model-shaped run whose model takes 0 ms."""
    run_id = uuid.uuid4().hex
    spec = RunSpec(
        environment=ENVIRONMENT,
        scenario=SCENARIO,
        args=ARGS,
        model="scripted",
        script=script,
        max_steps=len(script.steps),
    )
    await store.create_run(NewRun(run_id, run_id, spec))
    return RunInput(
        run_id=run_id,
        environment=ENVIRONMENT,
        scenario=SCENARIO,
        model="scripted",
        max_steps=len(script.steps),
        model_is_local=model_is_local,
    )


async def tuned_dev_server() -> WorkflowEnvironment:
    return await dev_server(dev_server_extra_args=DEV_SERVER_TUNING, dev_server_log_level="error")


@asynccontextmanager
async def loopline_worker(
    client: Client, stores: Stores, registry: Registry, task_queue: str = TASK_QUEUE
) -> AsyncIterator[None]:
    parts = WorkerParts(client, task_queue, stores, registry, SecretBox(Fernet.generate_key()))
    async with build_worker(parts, parts.caller(), parts.interceptors()):
        yield


async def loopline_run(
    client: Client,
    store: TraceStore,
    script: Script,
    task_queue: str = TASK_QUEUE,
    *,
    model_is_local: bool = True,
) -> tuple[float, str]:
    """Seconds from the workflow's start to its result (the run's creation is not timed),
    and the workflow's id."""
    run = await create_run(store, script, model_is_local=model_is_local)
    started = time.perf_counter()
    result = await client.execute_workflow(
        RunWorkflow.run,
        run,
        id=run_workflow_id(run.run_id),
        task_queue=task_queue,
        search_attributes=initial_search_attributes(run),
    )
    elapsed = time.perf_counter() - started
    assert result.reward == 1.0 and result.steps == len(script.steps), result
    return elapsed, run_workflow_id(run.run_id)


async def history_bytes(client: Client, workflow_id: str) -> int:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return History(events=history.events).ByteSize()
