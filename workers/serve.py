"""The long-running parts, each stoppable by an event: worker and API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator

import uvicorn
from temporalio.client import Client

from api.app import create_app
from loopline.environment.registry import Registry
from loopline.redaction import HELD
from loopline.secrets import load_secret_box
from loopline.settings import Settings, outbound_policy
from loopline.store import open_stores
from loopline.temporal import ensure_search_attributes
from workers.worker import WorkerParts, build_workers

# How long the API lets requests in flight finish once stopping; event streams never would.
API_GRACE_SECONDS = 5


class ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process stops its parts in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def api_server(settings: Settings, host: str, port: int, client: Client) -> ApiServer:
    config = uvicorn.Config(
        create_app(settings, client),
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=API_GRACE_SECONDS,
    )
    return ApiServer(config)


async def serve_api_until(server: ApiServer, stop: asyncio.Event) -> None:
    serving = asyncio.create_task(server.serve())
    await asyncio.wait([serving, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED")
    server.should_exit = True
    await serving


async def run_worker_until(settings: Settings, stop: asyncio.Event, temporal: Client) -> None:
    registry = Registry.from_modules(
        settings.served_environment_modules(),
        settings.remote_environments,
        outbound_policy(settings),
    )
    await ensure_search_attributes(temporal, settings.temporal_namespace)
    async with (
        open_stores(settings.database_url, HELD, settings.sqlite_synchronous) as stores,
        registry,
    ):
        parts = WorkerParts(
            client=temporal,
            task_queue=settings.task_queue,
            stores=stores,
            registry=registry,
            box=load_secret_box(settings),
            prices_file=settings.prices_file,
            relay_webhooks=settings.relay_webhooks,
            rate_limits=settings.provider_rate_limits,
        )
        workers = build_workers(parts)
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            await stop.wait()
