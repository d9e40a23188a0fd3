"""The `loopline` command: up (embedded stack), worker, api, demo, batch, export, keys."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from activities.callbacks import default_signing_secret
from loopline.logs import configure_logging
from loopline.secrets import load_secret_box
from loopline.settings import Settings, get_settings
from loopline.telemetry import (
    TelemetryUnavailableError,
    flush_traces,
    install_metrics,
    tracing_plugins,
)
from loopline.temporal import TemporalUnreachableError, connect
from workers.cli.batch import (
    BatchCommandError,
    add_api_key_argument,
    add_batch_parser,
    run_batch_command,
)
from workers.cli.demo import run_demo
from workers.cli.export import ExportCommandError, add_export_parser, run_export_command
from workers.cli.keys import KeysCommandError, add_keys_parser, run_keys_command
from workers.cli.replay import ReplayCommandError, add_replay_parser, run_replay_command
from workers.cli.shutdown import stop_on_signals
from workers.cli.up import LOG_FILE, EmbeddedOptions, PortInUseError, run_embedded
from workers.serve import api_server, run_worker_until, serve_api_until


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loopline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="Temporal dev server + worker + API in one process")
    up.add_argument("--data-dir", type=Path, default=Path(".loopline"))
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--api-port", type=int, default=8000)
    up.add_argument("--temporal-port", type=int, default=7233)
    up.add_argument("--ui-port", type=int, default=8233)
    up.add_argument("--demo", action="store_true", help="run the demo once the stack is up")
    up.add_argument(
        "--verbose",
        action="store_true",
        help="show every log line here (default: warnings here, the rest in DATA_DIR/loopline.log)",
    )

    commands.add_parser("worker", help="a worker, configured by LOOPLINE_* variables")

    api = commands.add_parser("api", help="the HTTP API, configured by LOOPLINE_* variables")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)

    demo = commands.add_parser("demo", help="run the demo against a running API")
    demo.add_argument("--api-url", default="http://127.0.0.1:8000")
    add_api_key_argument(demo)

    add_batch_parser(commands)
    add_export_parser(commands)
    add_replay_parser(commands)
    add_keys_parser(commands)
    commands.add_parser(
        "callback-secret",
        help="print the key that signs callbacks sent without their own secret",
    )
    return parser


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "demo":
        return 0 if await run_demo(args.api_url, args.api_key) else 1
    if args.command == "batch":
        return await run_batch_command(args)
    if args.command == "export":
        return await run_export_command(args)
    if args.command == "replay":
        return await run_replay_command(args)
    if args.command == "keys":
        return await run_keys_command(args, settings)
    if args.command == "callback-secret":
        print(default_signing_secret(load_secret_box(settings)))
        return 0
    # Only the long-running commands: `keys` or `demo` beside a server must not take its port.
    install_metrics(settings.metrics_address)
    stop = stop_on_signals()
    plugins = tracing_plugins(settings.otel_endpoint, f"loopline-{args.command}")
    if args.command == "worker":
        await run_worker_until(settings, stop, await connect(settings, plugins))
        return 0
    if args.command == "api":
        client = await connect(settings, plugins)
        await serve_api_until(api_server(settings, args.host, args.port, client), stop)
        return 0
    options = EmbeddedOptions(
        data_dir=args.data_dir,
        host=args.host,
        api_port=args.api_port,
        temporal_port=args.temporal_port,
        ui_port=args.ui_port,
        demo=args.demo,
        verbose=args.verbose,
    )
    return 0 if await run_embedded(options, settings, stop, plugins) else 1


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    server = args.command in ("worker", "api")
    quiet = args.command == "up" and not args.verbose
    configure_logging(
        settings.log_level,
        settings.log_format or ("json" if server else "text"),
        log_file=args.data_dir / LOG_FILE if quiet else None,
    )
    try:
        code = asyncio.run(_run(args, settings))
    except (
        TemporalUnreachableError,
        PortInUseError,
        BatchCommandError,
        ExportCommandError,
        KeysCommandError,
        ReplayCommandError,
        TelemetryUnavailableError,
    ) as error:
        print(f"loopline: {error}", file=sys.stderr)
        code = 2
    flush_traces()
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio/sdk-python#300: a process that used a Temporal client may crash while the
    # interpreter finalises; leave with the real status before that can happen.
    os._exit(code)
