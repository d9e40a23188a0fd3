"""Builds the Temporal worker that runs Loopline's workflows and activities."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.batches import BatchActivities
from activities.callbacks import CallbackActivities
from activities.evaluation import EvaluationActivities
from activities.inputs import InputActivities
from activities.model_calls import ModelCaller
from activities.model_step import ModelActivities
from activities.relay import RelayActivities
from activities.scenario import ScenarioActivities
from activities.simulated_user import SimulatedUserActivities
from activities.tools import ToolActivities
from loopline.environment.registry import Registry
from loopline.models import Provider
from loopline.pricing import PriceTable
from loopline.secrets import SecretBox
from loopline.settings import Settings
from loopline.store import Stores, TraceStore
from workflows.batch import BatchWorkflow
from workflows.contract.names import model_queue
from workflows.relay import RelayWorkflow
from workflows.run import RunWorkflow

GRACEFUL_SHUTDOWN = timedelta(seconds=20)


def model_caller(store: TraceStore, box: SecretBox, settings: Settings) -> ModelCaller:
    return ModelCaller(store, box, PriceTable.load(settings.prices_file))


def build_model_workers(
    client: Client,
    task_queue: str,
    store: TraceStore,
    registry: Registry,
    caller: ModelCaller,
    rate_limits: dict[Provider, float],
) -> list[Worker]:
    """One worker per provider on its model-call task queue. The server holds a queue's
    rate limit across every worker that polls it, so a limit holds across all runs."""
    model = ModelActivities(store, registry, caller)
    user = SimulatedUserActivities(store, registry, caller)
    evaluation = EvaluationActivities(store, registry, caller)
    return [
        Worker(
            client,
            task_queue=model_queue(task_queue, provider.value),
            activities=[model.model_step, user.user_turn, evaluation.judge],
            max_task_queue_activities_per_second=rate_limits.get(provider),
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        )
        for provider in Provider
        if provider is not Provider.scripted
    ]


def build_worker(
    client: Client,
    task_queue: str,
    stores: Stores,
    registry: Registry,
    caller: ModelCaller,
    box: SecretBox,
    relay_webhooks: dict[str, str] | None = None,
) -> Worker:
    store = stores.runs
    scenario = ScenarioActivities(store, registry)
    relay = RelayActivities(relay_webhooks or {})
    evaluation = EvaluationActivities(store, registry, caller)
    callbacks = CallbackActivities(store, registry, box)
    model = ModelActivities(store, registry, caller)
    user = SimulatedUserActivities(store, registry, caller)
    tools = ToolActivities(store, registry)
    inputs = InputActivities(store, registry)
    batches = BatchActivities(store, stores.batches)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RunWorkflow, BatchWorkflow, RelayWorkflow],
        activities=[
            scenario.setup,
            scenario.teardown,
            evaluation.judge,
            evaluation.evaluate,
            callbacks.deliver_callback,
            batches.batch_rollouts,
            batches.batch_status,
            model.model_step,
            user.user_turn,
            tools.call_tool,
            inputs.record_status,
            inputs.record_user_messages,
            inputs.record_tool_results,
            relay.relay_message,
        ],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )
