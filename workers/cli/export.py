"""`loopline export`: write the runs that pass a filter to a JSONL file for training, as
the API streams them (GET /v1/exports), and say how many runs it wrote."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from workers.cli.batch import add_api_key_argument
from workers.cli.refusals import refusal_detail

FORMATS = ("openai-chat", "rl")


class ExportCommandError(Exception):
    """Something the user must fix (an option, a refused request, an unwritable file)."""


def add_export_parser(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="write runs as OpenAI chat fine-tuning JSONL or as RL episodes"
    )
    export.add_argument("--format", choices=FORMATS, default="openai-chat")
    export.add_argument("-o", "--output", type=Path, required=True, help="the JSONL file")
    export.add_argument("--batch", help="runs of this batch")
    export.add_argument("--taskset", help="runs of this taskset (id or name)")
    export.add_argument("--environment", help="runs of this environment")
    export.add_argument("--scenario", help="runs of this scenario")
    export.add_argument("--model", help="runs of this model, as they were started")
    export.add_argument("--min-reward", type=float, help="runs rewarded at least this")
    success = export.add_mutually_exclusive_group()
    success.add_argument("--success", action="store_true", default=None, help="successes only")
    success.add_argument("--failure", action="store_true", help="failures only")
    export.add_argument(
        "--status", default="completed", help="runs in this status (default: completed)"
    )
    export.add_argument("--api-url", default="http://127.0.0.1:8000")
    add_api_key_argument(export)


def export_params(args: argparse.Namespace) -> dict[str, str]:
    """The query of GET /v1/exports the options ask for."""
    success = False if args.failure else args.success
    given = {
        "format": args.format,
        "batch_id": args.batch,
        "taskset": args.taskset,
        "environment": args.environment,
        "scenario": args.scenario,
        "model": args.model,
        "min_reward": args.min_reward,
        "success": None if success is None else str(success).lower(),
        "status": args.status,
    }
    return {key: str(value) for key, value in given.items() if value is not None}


async def run_export_command(args: argparse.Namespace) -> int:
    try:
        count = await _export(args)
    except httpx.TransportError as error:
        raise ExportCommandError(
            f"the API at {args.api_url} cannot be reached or broke off the export ({error}); "
            "start it (`loopline up`) or pass --api-url"
        ) from error
    print(f"wrote {count} runs to {args.output}", file=sys.stderr)
    return 0


async def _export(args: argparse.Namespace) -> int:
    """Stream the export into a file beside the output, renamed to it once complete: a
    cut-off export never passes for a whole one."""
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    partial = args.output.with_name(f"{args.output.name}.partial")
    # Reading a page of runs can take a while; no timeout between two chunks.
    async with (
        httpx.AsyncClient(base_url=args.api_url, headers=headers, timeout=None) as http,
        http.stream("GET", "/v1/exports", params=export_params(args)) as response,
    ):
        if not response.is_success:
            raise ExportCommandError(_refusal(response, await response.aread()))
        count = 0
        try:
            with partial.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
                    count += chunk.count(b"\n")
        except OSError as error:
            raise ExportCommandError(f"cannot write {args.output}: {error.strerror}") from error
    os.replace(partial, args.output)
    return count


def _refusal(response: httpx.Response, body: bytes) -> str:
    detail = refusal_detail(response.status_code, body)
    return f"the API refused the export ({response.status_code}): {detail}"
