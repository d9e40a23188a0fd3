"""The FastAPI application: the services with their background work, the native routes and
the dialects' routers, and the one mapping of service errors to HTTP answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from temporalio.client import Client

from api.http.dialects import ROUTERS
from api.http.docs import install_docs
from api.http.errors import ERROR_DESCRIPTIONS, install_error_handlers
from api.http.limits import BodyLimits
from api.http.mcp import router as mcp_router
from api.http.observability import RequestObserver
from api.http.routes import (
    artifacts,
    batches,
    commands,
    environments,
    exports,
    keys,
    lineage,
    runs,
    tasksets,
)
from api.http.ui import error_page, install_viewer
from api.services import running_services
from loopline.settings import Settings

NATIVE_ROUTERS = (
    runs.router,
    commands.router,
    artifacts.router,
    tasksets.router,
    batches.router,
    environments.router,
    keys.router,
    exports.router,
    lineage.router,
)


def create_app(settings: Settings, temporal: Client) -> FastAPI:
    """The API, starting and reading runs through `temporal`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_services(settings, temporal) as services:
            app.state.services = services
            yield

    app = FastAPI(
        title="Loopline",
        version="0.1.0",
        description="Durable LLM agent runs on Temporal.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app, error_page)
    app.add_middleware(BodyLimits, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestObserver, tracing=settings.otel_endpoint is not None)
    refusals: dict[int | str, dict[str, Any]] = {
        status: {"description": text} for status, text in ERROR_DESCRIPTIONS.items()
    }
    for router in (*NATIVE_ROUTERS, mcp_router, *ROUTERS):
        app.include_router(router, responses=refusals)

    install_docs(app)
    install_viewer(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
