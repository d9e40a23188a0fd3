"""`loopline replay`: run recorded runs again against the code deployed now (no model is
called) and say what changed: one run's report, or for a batch a table of changed rewards."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import httpx

from workers.cli.batch import add_api_key_argument
from workers.cli.refusals import refusal_detail

RUN_PAGE = 200


class ReplayCommandError(Exception):
    """Something the user must fix (an option, a refused request)."""


def add_replay_parser(commands: Any) -> None:
    replay = commands.add_parser(
        "replay", help="replay recorded runs against the code deployed now and report changes"
    )
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("run_id", nargs="?", help="the run to replay")
    target.add_argument("--batch", help="replay every completed run of this batch")
    replay.add_argument("--parallel", type=int, default=8, help="replays at once (batches)")
    replay.add_argument("--timeout", type=int, default=300, help="seconds to wait per replay")
    replay.add_argument("--json", action="store_true", help="print the reports as JSON lines")
    replay.add_argument("--api-url", default="http://127.0.0.1:8000")
    add_api_key_argument(replay)


async def run_replay_command(args: argparse.Namespace) -> int:
    """0 when nothing changed, 1 when something did (a regression test's exit status)."""
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    timeout = httpx.Timeout(args.timeout + 30)
    try:
        async with httpx.AsyncClient(
            base_url=args.api_url, headers=headers, timeout=timeout
        ) as http:
            run_ids = [args.run_id] if args.run_id else await _batch_runs(http, args.batch)
            reports, failures = await _replay_all(http, run_ids, args.parallel, args.timeout)
    except httpx.TransportError as error:
        raise ReplayCommandError(
            f"the API at {args.api_url} cannot be reached ({error}); start it (`loopline up`) "
            "or pass --api-url"
        ) from error
    if args.run_id and failures:
        raise ReplayCommandError(failures[0])
    if args.json:
        for report in reports:
            print(json.dumps(report))
    elif args.run_id:
        print(describe(reports[0]))
    else:
        print(reward_table(reports))
    for failure in failures:
        print(f"loopline: {failure}", file=sys.stderr)
    if failures:
        return 2
    return 0 if all(report["same"] for report in reports) else 1


async def _batch_runs(http: httpx.AsyncClient, batch_id: str) -> list[str]:
    runs: list[dict[str, Any]] = []
    while True:
        params: dict[str, str | int] = {"batch_id": batch_id, "limit": RUN_PAGE}
        page = _answer(await http.get("/v1/runs", params={**params, "offset": len(runs)}))
        runs.extend(page["runs"])
        if not page["runs"] or len(runs) >= page["total"]:
            break
    # A failed or cancelled run's outcome is no baseline to compare a replay's with.
    completed = [run["run_id"] for run in runs if run["status"] == "completed"]
    if not completed:
        raise ReplayCommandError(f"batch {batch_id!r} has no completed runs to replay")
    return completed


async def _replay_all(
    http: httpx.AsyncClient, run_ids: list[str], parallel: int, wait_seconds: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """The reports of the replays that ended, and why the others did not."""
    gate = asyncio.Semaphore(max(1, parallel))

    async def replay(run_id: str) -> dict[str, Any]:
        async with gate:
            body = {"wait": True, "timeout": min(wait_seconds, 600)}
            result = _answer(await http.post(f"/v1/runs/{run_id}/replay", json=body))
            if result["report"] is not None:
                return dict(result["report"])
            replay_id = result["run"]["run_id"]
            raise ReplayCommandError(
                f"the replay {replay_id} of run {run_id} did not end within {wait_seconds} s; "
                f"read its report later: GET /v1/runs/{replay_id}/replay-report"
            )

    outcomes = await asyncio.gather(*(replay(run_id) for run_id in run_ids), return_exceptions=True)
    reports = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    failures = [str(outcome) for outcome in outcomes if isinstance(outcome, ReplayCommandError)]
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, ReplayCommandError):
            raise outcome
    return reports, failures


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.is_success:
        body: dict[str, Any] = response.json()
        return body
    detail = refusal_detail(response.status_code, response.content)
    path = response.request.url.path
    raise ReplayCommandError(f"the API refused {path} ({response.status_code}): {detail}")


def describe(report: dict[str, Any]) -> str:
    """One replay's report as lines a person reads."""
    origin = report["origin"]
    lines = [
        f"replay {report['run_id']} of run {origin['run_id']} ({report['status']}, "
        f"{report['compared_steps']} steps): {'no change' if report['same'] else 'changed'}"
    ]
    for tool in report["tools"]:
        lines.append(
            f"  step {tool['step']} {tool['tool']} ({tool['call_id']}) {tool['field']}: "
            f"{_short(tool['recorded'])} -> {_short(tool['replayed'])}"
        )
    for change in report["state"]:
        if "omitted" in change:
            lines.append(f"  state: {change['omitted']} more changes")
        else:
            lines.append(
                f"  state {change['path']}: {_short(change['before'])} -> {_short(change['after'])}"
            )
    for name in ("reward", "answer", "stop_reason"):
        if report[name] is not None:
            change = report[name]
            lines.append(f"  {name}: {_short(change['recorded'])} -> {_short(change['replayed'])}")
    for evaluator, change in report["evaluations"].items():
        lines.append(
            f"  evaluator {evaluator}: {_short(change['recorded'])} -> {_short(change['replayed'])}"
        )
    lines.extend(f"  note: {note}" for note in report["notes"])
    return "\n".join(lines)


def reward_table(reports: list[dict[str, Any]]) -> str:
    """The runs whose reward changed, one row each, then a count."""
    changed = [report for report in reports if report["reward"] is not None]
    rows = [("run", "replay", "recorded", "replayed")]
    rows.extend(
        (
            report["origin"]["run_id"],
            report["run_id"],
            _short(report["reward"]["recorded"]),
            _short(report["reward"]["replayed"]),
        )
        for report in changed
    )
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    other = sum(1 for report in reports if not report["same"]) - len(changed)
    lines.append(
        f"{len(changed)} of {len(reports)} rewards changed; "
        f"{other} more runs changed with the same reward"
    )
    return "\n".join(line.rstrip() for line in lines)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
