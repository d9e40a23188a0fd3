"""Builds the Temporal worker that runs Loopline's workflows and activities."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.model_step import ModelActivities
from activities.scenario import ScenarioActivities
from activities.tools import ToolActivities
from loopline.registry import Registry
from loopline.store import TraceStore
from workflows.run import RunWorkflow

GRACEFUL_SHUTDOWN = timedelta(seconds=20)


def build_worker(client: Client, task_queue: str, store: TraceStore, registry: Registry) -> Worker:
    scenario = ScenarioActivities(store, registry)
    model = ModelActivities(store, registry)
    tools = ToolActivities(store, registry)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RunWorkflow],
        activities=[
            scenario.setup,
            scenario.evaluate,
            scenario.teardown,
            model.model_step,
            tools.call_tool,
        ],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )
