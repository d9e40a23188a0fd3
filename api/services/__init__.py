"""The service layer: every rule of the API, authorization included, without a web
framework. Each call takes the caller (api/services/access.py) and raises the errors of
api/services/errors.py; api/http translates requests into calls and errors into answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from temporalio.client import Client

from api.services.access import Access
from api.services.agents import AgentService
from api.services.artifacts import ArtifactService
from api.services.batches import BatchService
from api.services.commands import CommandService
from api.services.environments import EnvironmentService
from api.services.exports import ExportService
from api.services.keys import KeyService
from api.services.lineage import LineageService
from api.services.live import LiveEvents
from api.services.mcp_sessions import McpSessionService
from api.services.reconciler import Reconciler, ReconcileSettings
from api.services.runs import RunService, RunSettings
from api.services.signing import Signer
from api.services.task_runs import TaskRunService
from api.services.tasksets import TasksetService
from api.services.templates import TemplateService
from api.services.viewer import ViewerSessions
from api.services.workflows import Workflows
from loopline.blobs import open_blob_store
from loopline.environment.registry import Registry
from loopline.secrets import load_secret_box
from loopline.settings import Settings, outbound_policy
from loopline.store import Stores, open_stores
from loopline.store.exports import ExportStore
from loopline.store.notices import listen, listens


@dataclass(frozen=True)
class Services:
    access: Access
    runs: RunService
    commands: CommandService
    live: LiveEvents
    batches: BatchService
    tasksets: TasksetService
    artifacts: ArtifactService
    agents: AgentService
    environments: EnvironmentService
    keys: KeyService
    task_runs: TaskRunService
    templates: TemplateService
    reconciler: Reconciler
    viewer: ViewerSessions
    mcp_sessions: McpSessionService
    exports: ExportService
    lineage: LineageService


def build_services(
    settings: Settings, temporal: Client, stores: Stores, registry: Registry
) -> Services:
    box = load_secret_box(settings)
    signer = Signer.from_box(box)
    access = Access(stores.keys, stores.runs, stores.batches, signer)
    workflows = Workflows(temporal, settings.task_queue, settings.temporal_ui_url)
    live = LiveEvents(
        stores.runs, access, temporal, settings.event_poll_seconds, settings.sse_keepalive_seconds
    )
    run_settings = RunSettings(
        settings.task_queue, settings.session_history_limit, settings.max_active_runs
    )
    tasksets = TasksetService(stores.tasksets, access, registry)
    runs = RunService(stores, access, workflows, registry, box, live, tasksets, run_settings)
    commands = CommandService(stores.runs, access, workflows, settings.relay_webhooks)
    blobs = open_blob_store(settings)
    environments = EnvironmentService(registry, access)
    return Services(
        access=access,
        runs=runs,
        commands=commands,
        live=live,
        batches=BatchService(stores, access, workflows, registry, box, blobs, run_settings),
        tasksets=tasksets,
        artifacts=ArtifactService(stores.runs, access, blobs, signer, settings.max_artifact_bytes),
        agents=AgentService(stores.agents, stores.runs, access, runs, commands, live),
        environments=environments,
        keys=KeyService(stores.keys, access),
        task_runs=TaskRunService(stores.tasksets, access, runs, settings.default_model),
        templates=TemplateService(stores.tasksets, environments, access),
        reconciler=Reconciler(
            stores,
            workflows,
            ReconcileSettings(session_history_limit=settings.session_history_limit),
        ),
        viewer=ViewerSessions.from_box(access, box),
        mcp_sessions=McpSessionService(runs, environments, access, workflows, stores.runs),
        exports=ExportService(ExportStore(stores.db), access, stores.tasksets, registry),
        lineage=LineageService(stores, access, runs, workflows),
    )


@contextlib.asynccontextmanager
async def running_services(settings: Settings, temporal: Client) -> AsyncIterator[Services]:
    """The services with what they run in the background: the live-event ticker, the
    reconciler and (on PostgreSQL) the listener of event notices."""
    registry = Registry.from_modules(
        settings.served_environment_modules(),
        settings.remote_environments,
        outbound_policy(settings),
    )
    async with (
        open_stores(
            settings.database_url, sqlite_synchronous=settings.sqlite_synchronous
        ) as stores,
        registry,
    ):
        services = build_services(settings, temporal, stores, registry)
        stores.runs.on_write(services.live.heard)
        services.live.start()
        background = [asyncio.create_task(services.reconciler.run_forever())]
        if listens(settings.database_url):
            background.append(
                asyncio.create_task(listen(settings.database_url, services.live.heard))
            )
        try:
            yield services
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.live.close()
