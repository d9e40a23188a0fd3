"""`loopline batch`: run a taskset or a JSONL file of tasks through the API, show progress,
print a summary table and export every run as JSONL."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import httpx

from workers.cli.refusals import refusal_detail

POLL_SECONDS = 0.5
BAR_WIDTH = 30
RUNS_PAGE = 1000


class BatchCommandError(Exception):
    """Something the user must fix (a file, an option, a refused request)."""


def add_batch_parser(commands: Any) -> None:
    batch = commands.add_parser(
        "batch", help="run a taskset or a JSONL file of tasks, with a progress bar and a summary"
    )
    source = batch.add_mutually_exclusive_group(required=True)
    source.add_argument("--taskset", help="a taskset id or name")
    source.add_argument("--tasks", type=Path, help="a JSONL file, one task per line")
    batch.add_argument("--rollouts", type=int, default=1, help="runs per task (default 1)")
    batch.add_argument("--max-parallel", type=int, default=10, help="runs at once (default 10)")
    batch.add_argument(
        "--model",
        default="scripted",
        help="'scripted', 'provider/model', or a model config as JSON or a JSON file "
        "(base_url, tool_choice, ...; api_key_env names the variable holding its key)",
    )
    batch.add_argument(
        "--script",
        type=Path,
        help="JSON script of a 'scripted' model, for tasks without a script of their own",
    )
    batch.add_argument("--judge-model", help="judge of rubrics (default: the agent's model)")
    batch.add_argument("--judge-script", type=Path, help="JSON script of a 'scripted' judge")
    batch.add_argument("--max-steps", type=int, default=100)
    batch.add_argument("--name", help="a name for the batch")
    batch.add_argument("--output", type=Path, help="write every run as JSONL here")
    batch.add_argument("--api-url", default="http://127.0.0.1:8000")
    add_api_key_argument(batch)


def add_api_key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key",
        default=os.environ.get("LOOPLINE_API_KEY"),
        help="an API key with task:read and task:write (default: $LOOPLINE_API_KEY; "
        "`loopline up` prints a local one)",
    )


async def run_batch_command(args: argparse.Namespace) -> int:
    """Exit status: 0 when the batch completed, 1 when it was cancelled or failed."""
    try:
        return await _run(args)
    except httpx.TransportError as error:
        raise BatchCommandError(
            f"cannot reach the API at {args.api_url} ({error}); start it (`loopline up`) "
            "or pass --api-url"
        ) from error


async def _run(args: argparse.Namespace) -> int:
    body = _request(args)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    async with httpx.AsyncClient(base_url=args.api_url, headers=headers, timeout=60) as http:
        batch = _answer(await http.post("/v1/batches", json=body))
        batch_id = batch["batch_id"]
        print(f"batch {batch_id}: {batch['counts']['total']} runs", file=sys.stderr)
        cancel = _cancel_on_interrupt()
        batch = await _follow(http, batch_id, cancel)
        print_summary(batch, sys.stdout)
        if args.output is not None:
            count = await _export(http, batch_id, args.output)
            print(f"wrote {count} runs to {args.output}", file=sys.stderr)
    return 0 if batch["status"] == "completed" else 1


def _request(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "rollout_count": args.rollouts,
        "max_parallel": args.max_parallel,
        "model": model_option(args.model),
        "max_steps": args.max_steps,
    }
    if args.taskset:
        body["taskset"] = args.taskset
    else:
        body["tasks"] = _read_tasks(args.tasks)
    optional = {
        "name": args.name,
        "judge_model": args.judge_model,
        "script": _read_json(args.script),
        "judge_script": _read_json(args.judge_script),
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def model_option(value: str) -> str | dict[str, Any]:
    """--model as the API takes it: a name, or a config from JSON text or a JSON file whose
    `api_key_env` is replaced by the key that variable holds here."""
    if value.lstrip().startswith("{"):
        config = _json_object(value, "--model")
    elif value.endswith(".json") or Path(value).is_file():
        config = _json_object(_read_text(Path(value)), value)
    else:
        return value
    variable = config.pop("api_key_env", None)
    if variable is not None:
        if not isinstance(variable, str) or not os.environ.get(variable):
            raise BatchCommandError(f"--model: api_key_env {variable!r} is not set here")
        config["api_key"] = os.environ[variable]
    return config


def _json_object(text: str, source: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise BatchCommandError(f"{source}: not JSON: {error.msg}") from error
    if not isinstance(parsed, dict):
        raise BatchCommandError(f"{source}: a model config is a JSON object")
    return parsed


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise BatchCommandError(f"cannot read {path}: {error.strerror}") from error


def _read_tasks(path: Path) -> list[dict[str, Any]]:
    tasks = []
    lines = _read_text(path).splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            tasks.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise BatchCommandError(f"{path}:{number}: not JSON: {error.msg}") from error
    if not tasks:
        raise BatchCommandError(f"{path} has no tasks (one JSON object per line)")
    return tasks


def _read_json(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise BatchCommandError(f"{path}: not JSON: {error.msg}") from error


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.is_success:
        answer: dict[str, Any] = response.json()
        return answer
    detail = refusal_detail(response.status_code, response.content)
    raise BatchCommandError(f"the API refused the batch ({response.status_code}): {detail}")


def _cancel_on_interrupt() -> asyncio.Event:
    """The first Ctrl-C cancels the batch gracefully; the command waits for it to end."""
    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, cancel.set)
    return cancel


async def _follow(http: httpx.AsyncClient, batch_id: str, cancel: asyncio.Event) -> dict[str, Any]:
    started = time.monotonic()
    progress = Progress(sys.stderr)
    cancelled = False
    while True:
        batch = _answer(await http.get(f"/v1/batches/{batch_id}", params={"include_runs": False}))
        progress.show(batch, time.monotonic() - started)
        if batch["status"] in {"completed", "cancelled", "failed"}:
            progress.done()
            return batch
        if cancel.is_set() and not cancelled:
            cancelled = True
            print("\ncancelling the batch (its runs stop and tear down)...", file=sys.stderr)
            await http.post(f"/v1/batches/{batch_id}/cancel", json={"reason": "Ctrl-C"})
        await asyncio.sleep(POLL_SECONDS)


class Progress:
    """A bar redrawn in place on a terminal; elsewhere, a line whenever a run ends."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last = ""

    def show(self, batch: dict[str, Any], elapsed: float) -> None:
        counts = batch["counts"]
        ended = counts["completed"] + counts["failed"] + counts["cancelled"]
        total = max(counts["total"], 1)
        filled = BAR_WIDTH * ended // total
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        reward = batch["scores"]["mean_reward"]
        shown = "-" if reward is None else f"{reward:.3f}"
        line = (
            f"[{bar}] {ended}/{counts['total']} ended · {counts['running']} running · "
            f"{counts['failed']} failed · mean reward {shown} · {elapsed:.1f} s"
        )
        if self._tty:
            self._stream.write(f"\r{line}")
        elif line.split(" · ")[0] != self._last.split(" · ")[0]:
            self._stream.write(f"{line}\n")
        self._stream.flush()
        self._last = line

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


def print_summary(batch: dict[str, Any], out: TextIO) -> None:
    scores = batch["scores"]
    ks = sorted({int(k) for task in scores["tasks"] for k in task["pass_at_k"]})
    shown_ks = [k for k in ks if k == 1 or k == ks[-1]]
    header = ["task", "runs", "done", "failed", "cancelled", "reward", "success"]
    header += [f"pass@{k}" for k in shown_ks]
    rows = [
        [
            task["task"],
            task["rollouts"],
            task["completed"],
            task["failed"],
            task["cancelled"],
            _number(task["mean_reward"]),
            _number(task["success_rate"]),
            *(_number(task["pass_at_k"].get(str(k))) for k in shown_ks),
        ]
        for task in scores["tasks"]
    ]
    overall = scores["pass_at_k"]
    counts = batch["counts"]
    rows.append(
        [
            "all",
            counts["total"],
            counts["completed"],
            counts["failed"],
            counts["cancelled"],
            _number(scores["mean_reward"]),
            _number(scores["success_rate"]),
            *(_number(overall.get(str(k))) for k in shown_ks),
        ]
    )
    table = [header, *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print(f"\nbatch {batch['batch_id']}: {batch['status']}", file=out)
    for index, row in enumerate(table):
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(cells.rstrip(), file=out)
        if index == 0 or index == len(table) - 2:
            print("  ".join("-" * width for width in widths), file=out)
    usage = batch["usage"]
    print(f"model calls {usage['model_calls']} · cost ${usage['cost_usd']:.4f}", file=out)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


async def _export(http: httpx.AsyncClient, batch_id: str, path: Path) -> int:
    count = 0
    with path.open("w") as out:
        while True:
            page = _answer(
                await http.get(
                    f"/v1/batches/{batch_id}/runs", params={"limit": RUNS_PAGE, "offset": count}
                )
            )
            for run in page["runs"]:
                out.write(json.dumps(_exported(run)) + "\n")
            count += len(page["runs"])
            if count >= page["total"] or not page["runs"]:
                return count


def _exported(run: dict[str, Any]) -> dict[str, Any]:
    fields = (
        "run_id", "batch_id", "task", "rollout", "status", "stop_reason", "reward", "success",
        "evaluations", "answer", "error", "steps", "usage", "created_at", "ended_at", "metadata",
    )  # fmt: skip
    return {field: run.get(field) for field in fields}
