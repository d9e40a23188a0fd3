"""The demo: two keyless scripted runs through the HTTP API, their traces and rewards, and a
small batch of rollouts with its score table."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httpx

from workers.cli.batch import Progress, print_summary

DEMO_RUNS: list[dict[str, Any]] = [
    {
        "environment": "orders",
        "scenario": "refund_damaged",
        "args": {"customer": "ada", "order_id": "A-1002"},
        "script": {
            "steps": [
                {"tool_calls": [{"name": "get_order", "arguments": {"order_id": "A-1002"}}]},
                {
                    "tool_calls": [
                        {
                            "name": "issue_refund",
                            "arguments": {
                                "order_id": "A-1002",
                                "amount": 54.5,
                                "reason": "arrived damaged",
                            },
                        },
                        {
                            "name": "open_ticket",
                            "arguments": {"order_id": "A-1002", "subject": "lamp arrived damaged"},
                        },
                    ]
                },
                {"content": "I refunded 54.50 for order A-1002 and opened ticket T-1."},
            ]
        },
    },
    {
        "environment": "trivia",
        "scenario": "capital",
        "args": {"country": "Kenya"},
        "script": {
            "steps": [
                {"tool_calls": [{"name": "lookup", "arguments": {"topic": "Kenya"}}]},
                {"content": "The capital city of Kenya is Nairobi."},
            ]
        },
    },
]


# Three capitals, three rollouts each; the scripted agent knows Paris and, one time in
# three, Nairobi: pass@1 and pass@3 come out different.
DEMO_BATCH: dict[str, Any] = {
    "name": "demo: capitals",
    "tasks": [
        {
            "slug": country.lower(),
            "scenario": "capital",
            "args": {"country": country},
            "env": {"name": "trivia"},
        }
        for country in ("France", "Kenya", "Peru")
    ],
    "rollout_count": 3,
    "max_parallel": 5,
    "rollout_scripts": [
        {"steps": [{"content": "Paris, I believe."}]},
        {"steps": [{"content": "Paris, or maybe Nairobi."}]},
        {"steps": [{"content": "Paris."}]},
    ],
}
BATCH_WAIT_SECONDS = 120


async def run_demo(api_url: str, api_key: str | None) -> bool:
    """Run the demo episodes and the demo batch and print them; true when every run earned
    a full reward and the batch completed."""
    all_rewarded = True
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=120) as http:
        for body in DEMO_RUNS:
            started = await http.post("/v1/runs", json={**body, "sync": True, "timeout": 60})
            started.raise_for_status()
            run_id = started.json()["run_id"]
            response = await http.get(f"/v1/runs/{run_id}", params={"include_trajectory": True})
            response.raise_for_status()
            run = response.json()
            print_run(run, api_url)
            all_rewarded = all_rewarded and run["reward"] == 1.0
        batch = await run_batch(http, api_url)
    return all_rewarded and batch["status"] == "completed"


async def run_batch(http: httpx.AsyncClient, api_url: str) -> dict[str, Any]:
    started = await http.post("/v1/batches", json=DEMO_BATCH)
    started.raise_for_status()
    batch_id = started.json()["batch_id"]
    started_at = time.monotonic()
    progress = Progress(sys.stdout)
    print()
    while True:
        batch: dict[str, Any] = (await http.get(f"/v1/batches/{batch_id}")).json()
        elapsed = time.monotonic() - started_at
        progress.show(batch, elapsed)
        if batch["status"] in {"completed", "cancelled", "failed"} or elapsed > BATCH_WAIT_SECONDS:
            progress.done()
            print_summary(batch, sys.stdout)
            print(f"  Viewer: {api_url}/ui/batches/{batch_id}")
            return batch
        await asyncio.sleep(0.2)


def print_run(run: dict[str, Any], api_url: str) -> None:
    print(f"\nrun {run['run_id']}  {run['environment']}/{run['scenario']} · model {run['model']}")
    for event in run["trajectory"] or []:
        print(f"  {event['seq']:>3}  {describe_event(event)}")
    print(
        f"  => {run['status']} ({run['stop_reason']}), reward {run['reward']}, {run['steps']} steps"
    )
    print(f"     Viewer:      {api_url}/ui/runs/{run['run_id']}")
    if run.get("temporal_ui_url"):
        print(f"     Temporal UI: {run['temporal_ui_url']}")


def describe_event(event: dict[str, Any]) -> str:
    data = event["data"]
    if event["type"] == "message":
        calls = ", ".join(f"{c['name']}({_args(c['arguments'])})" for c in data["tool_calls"])
        text = data["content"] if not calls else f"calls {calls}"
        return f"{data['role']:<9} {_clip(text)}"
    if event["type"] == "evaluation":
        verdict = "success" if data["success"] else "miss"
        return f"{'evaluator':<9} {data['evaluator']}: score {data['score']:g} ({verdict})"
    if event["type"] == "reward":
        return f"{'reward':<9} {data['reward']} {data['details']}"
    if event["type"] == "status":
        return f"{'status':<9} {data['status']} ({data['stop_reason']})"
    return f"{event['type']:<9} {_clip(str(data))}"


def _args(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in arguments.items())


def _clip(text: str, width: int = 110) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
