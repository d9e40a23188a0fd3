"""The FastAPI application: wiring of store, Temporal client, registry and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api.access import Gate, ReadAccess, Signer
from api.agents import AgentService
from api.artifacts import ArtifactService
from api.batches import BatchService
from api.dialects import ROUTERS
from api.errors import install_error_handlers
from api.live import LiveEvents
from api.observability import RequestObserver
from api.routes import artifacts, batches, commands, environments, keys, runs, tasksets
from api.service import RunService
from api.tasksets import TasksetService
from loopline.agents import AgentCatalog
from loopline.blobs import open_blob_store
from loopline.catalog import Catalog
from loopline.keys import KeyStore
from loopline.registry import Registry
from loopline.secrets import load_secret_box
from loopline.settings import Settings
from loopline.store import open_store


def create_app(settings: Settings, temporal: Client) -> FastAPI:
    """The API, starting and reading runs through `temporal`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = Registry.from_modules(settings.environment_modules, settings.remote_environments)
        box = load_secret_box(settings)
        signer = Signer.from_box(box)
        async with open_store(settings.database_url) as store, registry:
            catalog = Catalog(store.db)
            blobs = open_blob_store(settings)
            app.state.service = RunService(
                store,
                catalog,
                temporal,
                registry,
                box,
                settings.task_queue,
                settings.temporal_ui_url,
                settings.session_history_limit,
                settings.relay_webhooks,
            )
            app.state.agents = AgentService(AgentCatalog(store.db), app.state.service, store)
            app.state.live_events = LiveEvents(
                store, temporal, settings.event_poll_seconds, settings.sse_keepalive_seconds
            )
            app.state.gate = Gate(KeyStore(store.db), store, catalog, signer)
            app.state.artifacts = ArtifactService(store, blobs, signer, settings.max_artifact_bytes)
            app.state.tasksets = TasksetService(catalog, registry)
            app.state.batches = BatchService(
                store,
                catalog,
                temporal,
                registry,
                box,
                blobs,
                settings.task_queue,
                settings.temporal_ui_url,
                settings.session_history_limit,
            )
            yield

    app = FastAPI(
        title="Loopline",
        version="0.1.0",
        description="Durable LLM agent runs on Temporal.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(RequestObserver, tracing=settings.otel_endpoint is not None)
    app.include_router(runs.router)
    app.include_router(commands.router)
    app.include_router(artifacts.router)
    app.include_router(tasksets.router)
    app.include_router(batches.router)
    app.include_router(environments.router, dependencies=[ReadAccess])
    app.include_router(keys.router)
    for dialect in ROUTERS:
        app.include_router(dialect)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
