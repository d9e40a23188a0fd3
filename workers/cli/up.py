"""`loopline up`: the Temporal dev server, a worker and the API in one command."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Plugin
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from loopline.models import DEFAULT_PROJECT, Scope
from loopline.settings import Settings, outbound_policy
from loopline.store.database import Database
from loopline.store.keys import KeyStore
from loopline.temporal import temporal_binary
from workers.cli.demo import run_demo
from workers.serve import api_server, run_worker_until, serve_api_until
from workflows.contract.names import SEARCH_ATTRIBUTES

# The dev server's settings for an agent's short steps (DESIGN.md, performance facts):
# - one task-queue partition raises throughput of many concurrent short runs;
# - the history service reads its transfer queue (how every new workflow or activity task
#   reaches its task queue) at most 20 times a second by default, per shard, and the dev
#   server has one shard: after a burst of 20, every regular-activity step of a run then
#   waited ~40 ms. 1,000 reads a second take a step from ~41 ms to ~7 ms
#   (bench/activity_roundtrip.py). The timer queue has the same default, for timers and
#   retry backoffs.
DEV_SERVER_TUNING = [
    "--dynamic-config-value",
    "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=1000",
    "--dynamic-config-value",
    "history.timerProcessorMaxPollRPS=1000",
]


LOCAL_KEY_NAME = "local (loopline up)"
# In the data dir: what `loopline up` logs, unless --verbose shows it in the terminal.
LOG_FILE = "loopline.log"


class PortInUseError(OSError):
    pass


@dataclass(frozen=True)
class EmbeddedOptions:
    data_dir: Path
    host: str
    api_port: int
    temporal_port: int
    ui_port: int
    demo: bool
    verbose: bool = False


async def run_embedded(
    options: EmbeddedOptions, base: Settings, stop: asyncio.Event, plugins: Sequence[Plugin]
) -> bool:
    """Run until `stop` is set; returns false when the demo did not earn its rewards."""
    for port, role, flag in (
        (options.api_port, "the API", "--api-port"),
        (options.temporal_port, "Temporal", "--temporal-port"),
        (options.ui_port, "the Temporal UI", "--ui-port"),
    ):
        _ensure_free(options.host, port, role, flag)
    options.data_dir.mkdir(parents=True, exist_ok=True)
    server = await WorkflowEnvironment.start_local(
        namespace=base.temporal_namespace,
        data_converter=pydantic_data_converter,
        plugins=plugins,
        port=options.temporal_port,
        ui=True,
        ui_port=options.ui_port,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_existing_path=temporal_binary(),
        dev_server_database_filename=str(options.data_dir / "temporal.db"),
        # Its lines go to the terminal, and Ctrl-C reaches it before the worker has said
        # goodbye: quiet unless asked for.
        dev_server_log_level="error" if options.verbose else "never",
        dev_server_extra_args=DEV_SERVER_TUNING,
    )
    ui_url = f"http://{options.host}:{options.ui_port}"
    settings = base.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{options.temporal_port}",
            "database_url": f"sqlite:///{(options.data_dir / 'loopline.db').resolve()}",
            "temporal_ui_url": ui_url,
            # One user on one machine: their local model servers and webhooks are theirs.
            "outbound_local": True,
        }
    )
    api_url = f"http://{options.host}:{options.api_port}"
    api_key = await local_api_key(settings.database_url, options.data_dir / "api-key")
    api = api_server(settings, options.host, options.api_port, server.client)
    demo_ok = True
    try:
        worker = asyncio.create_task(run_worker_until(settings, stop, server.client))
        serving = asyncio.create_task(serve_api_until(api, stop))
        # uvicorn offers a `started` flag, not an event, to wait on.
        while not api.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if serving.done():
            await serving
            return False
        print(f"Loopline is up (data in {options.data_dir.resolve()})")
        print(f"  Viewer:      {api_url}/ui  (sign in with the API key below)")
        print(f"  API docs:    {api_url}/docs")
        print(f"  Temporal UI: {ui_url}")
        print(f"  API key:     {api_key}  (admin; kept in {options.data_dir / 'api-key'})")
        print(f"  Outbound:    {outbound_policy(settings).describe()}")
        if not options.verbose:
            print(f"  Logs:        {options.data_dir / LOG_FILE}  (--verbose shows them here)")
        print("  Ctrl-C stops everything.", flush=True)
        if options.demo:
            demo_ok = await run_demo(api_url, api_key)
            print(f"\ndemo {'passed' if demo_ok else 'FAILED'}; still serving, Ctrl-C stops.")
        await asyncio.gather(worker, serving)
    finally:
        stop.set()
        await server.shutdown()
    return demo_ok


async def local_api_key(database_url: str, path: Path) -> str:
    """The embedded stack's admin key: the one kept in `path` while it is valid, else new."""
    db = Database(database_url)
    try:
        await db.create_schema()
        keys = KeyStore(db)
        kept = await asyncio.to_thread(_read_key, path)
        if kept is not None and await keys.authenticate(kept) is not None:
            return kept
        key = await keys.create(LOCAL_KEY_NAME, DEFAULT_PROJECT, [Scope.admin])
    finally:
        await db.close()
    await asyncio.to_thread(_write_key, path, key.key)
    return key.key


def _read_key(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None


def _write_key(path: Path, key: str) -> None:
    path.touch(mode=0o600)
    path.write_text(key + "\n")


def _ensure_free(host: str, port: int, role: str, flag: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUseError(
                f"port {port} for {role} is taken ({error.strerror}): "
                f"stop what holds it or choose another with {flag}"
            ) from error
