"""Starts under load, with and without back-pressure (LOOPLINE_MAX_ACTIVE_RUNS).

C clients POST one-step scripted runs as fast as they are answered for D seconds; a client
told 429 waits its Retry-After. Then the clients stop and the runs left in flight drain.
Without a limit the API accepts faster than the worker finishes and a backlog builds; with
one, accepted runs keep pace with finished ones and the backlog stays at the limit.

  python -m bench.start_pressure [--clients 50] [--seconds 20] [--limit 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.harness import Stack, answer_step, dev_server, run_body
from workers.cli.up import DEV_SERVER_TUNING

BODY = run_body("trivia", "capital", {"country": "France"}, answer_step("Paris"))
IN_FLIGHT = ("pending", "running")


@dataclass
class Tally:
    accepted: int = 0
    refused: int = 0
    most_in_flight: int = 0


async def client(api: httpx.AsyncClient, until: float, tally: Tally) -> None:
    while time.monotonic() < until:
        response = await api.post("/v1/runs", json=BODY)
        if response.status_code == 201:
            tally.accepted += 1
        elif response.status_code == 429:
            tally.refused += 1
            await asyncio.sleep(float(response.headers["Retry-After"]))
        else:
            response.raise_for_status()


async def in_flight(api: httpx.AsyncClient) -> int:
    pages = [
        (await api.get("/v1/runs", params={"status": status, "limit": 1})).json()["total"]
        for status in IN_FLIGHT
    ]
    return sum(pages)


async def watch(api: httpx.AsyncClient, until: float, tally: Tally) -> None:
    while time.monotonic() < until:
        tally.most_in_flight = max(tally.most_in_flight, await in_flight(api))
        await asyncio.sleep(0.5)


async def drained(api: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    while True:
        if not await in_flight(api):
            return time.perf_counter() - started
        await asyncio.sleep(0.2)


async def one_setting(address: str, limit: int, clients: int, seconds: float) -> str:
    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(
            temporal_address=address,
            workdir=Path(workdir),
            log_level="WARNING",
            extra_env={"LOOPLINE_MAX_ACTIVE_RUNS": str(limit)},
        )
        stack.start_worker()
        await stack.start_api()
        try:
            async with stack.client(timeout=120) as api:
                tally = Tally()
                until = time.monotonic() + seconds
                await asyncio.gather(
                    watch(api, until, tally), *(client(api, until, tally) for _ in range(clients))
                )
                backlog = await in_flight(api)
                drain = await drained(api)
        finally:
            stack.stop()
    finished = tally.accepted - backlog
    label = f"limit {limit}" if limit else "no limit"
    return (
        f"  {label:<9} accepted {tally.accepted / seconds:5.1f}/s, finished "
        f"{finished / seconds:5.1f}/s (ratio {tally.accepted / max(finished, 1):.2f}), "
        f"429s {tally.refused}, most in flight {tally.most_in_flight}, "
        f"left at the end {backlog}, drained in {drain:.1f} s"
    )


async def main(clients: int, seconds: float, limit: int) -> None:
    server = await dev_server(dev_server_extra_args=DEV_SERVER_TUNING, dev_server_log_level="error")
    address = server.client.service_client.config.target_host
    try:
        lines = [await one_setting(address, value, clients, seconds) for value in (0, limit)]
    finally:
        await server.shutdown()
    print(f"{clients} clients starting one-step runs for {seconds:g} s, one worker, 2 cores:")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--limit", type=int, default=50)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.clients, arguments.seconds, arguments.limit))
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(0)
