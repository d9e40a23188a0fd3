"""Builds the Temporal workers that run Loopline's workflows and activities: one on the run
task queue, and one per provider on the task queue of that provider's model calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from activities.agent_step import AgentStepActivities
from activities.batches import BatchActivities
from activities.callbacks import CallbackActivities
from activities.evaluation import EvaluationActivities
from activities.inputs import InputActivities
from activities.model_calls import ModelCaller
from activities.model_step import ModelActivities
from activities.redaction import RunSecrets, ScrubbingInterceptor
from activities.relay import RelayActivities
from activities.scenario import ScenarioActivities
from activities.simulated_user import SimulatedUserActivities
from activities.tools import ToolActivities
from loopline.environment.registry import Registry
from loopline.models import Provider
from loopline.pricing import PriceTable
from loopline.redaction import HELD
from loopline.secrets import SecretBox
from loopline.store import Stores
from workers.compiled import compile_once
from workflows.batch import BatchWorkflow
from workflows.contract.names import model_queue
from workflows.relay import RelayWorkflow
from workflows.run import RunWorkflow

# How long a stopping worker lets running activities finish before cancelling them; the
# runs go on from where they are on the next worker.
GRACEFUL_SHUTDOWN = timedelta(seconds=10)
WORKFLOWS = [RunWorkflow, BatchWorkflow, RelayWorkflow]


@dataclass(frozen=True)
class WorkerParts:
    """What every worker of a process shares."""

    client: Client
    task_queue: str
    stores: Stores
    registry: Registry
    box: SecretBox
    prices_file: str | None = None
    relay_webhooks: dict[str, str] = field(default_factory=dict)
    rate_limits: dict[Provider, float] = field(default_factory=dict)

    def caller(self) -> ModelCaller:
        prices = PriceTable.load(self.prices_file)
        return ModelCaller(self.stores.runs, self.box, prices, self.registry.outbound)

    def interceptors(self) -> list[Interceptor]:
        """No activity error leaves with a secret of its run (activities/redaction.py)."""
        return [ScrubbingInterceptor(RunSecrets(self.stores.runs, self.box, HELD))]


def build_workers(parts: WorkerParts) -> list[Worker]:
    caller = parts.caller()
    interceptors = parts.interceptors()
    return [
        build_worker(parts, caller, interceptors),
        *build_model_workers(parts, caller, interceptors),
    ]


def build_model_workers(
    parts: WorkerParts, caller: ModelCaller, interceptors: list[Interceptor]
) -> list[Worker]:
    """One worker per provider on its model-call task queue. The server holds a queue's
    rate limit across every worker that polls it, so a limit holds across all runs."""
    store, registry = parts.stores.runs, parts.registry
    model = ModelActivities(store, registry, caller)
    steps = AgentStepActivities(model, ToolActivities(store, registry))
    user = SimulatedUserActivities(store, registry, caller)
    evaluation = EvaluationActivities(store, registry, caller)
    return [
        Worker(
            parts.client,
            task_queue=model_queue(parts.task_queue, provider.value),
            activities=[model.model_step, steps.agent_step, user.user_turn, evaluation.judge],
            max_task_queue_activities_per_second=parts.rate_limits.get(provider),
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
            interceptors=interceptors,
        )
        for provider in Provider
        if provider is not Provider.scripted
    ]


def build_worker(
    parts: WorkerParts, caller: ModelCaller, interceptors: list[Interceptor]
) -> Worker:
    store, registry = parts.stores.runs, parts.registry
    scenario = ScenarioActivities(store, registry)
    evaluation = EvaluationActivities(store, registry, caller)
    callbacks = CallbackActivities(store, registry, parts.box)
    model = ModelActivities(store, registry, caller)
    user = SimulatedUserActivities(store, registry, caller)
    tools = ToolActivities(store, registry)
    steps = AgentStepActivities(model, tools)
    inputs = InputActivities(store, registry)
    batches = BatchActivities(store, parts.stores.batches)
    relay = RelayActivities(parts.relay_webhooks, parts.registry.outbound)
    compile_once(WORKFLOWS)
    return Worker(
        parts.client,
        task_queue=parts.task_queue,
        workflows=WORKFLOWS,
        activities=[
            scenario.setup,
            scenario.teardown,
            evaluation.judge,
            evaluation.evaluate,
            callbacks.deliver_callback,
            batches.batch_rollouts,
            batches.batch_status,
            model.model_step,
            steps.agent_step,
            user.user_turn,
            tools.call_tool,
            inputs.record_status,
            inputs.record_user_messages,
            inputs.record_tool_results,
            inputs.record_client_step,
            relay.relay_message,
        ],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        interceptors=interceptors,
    )
