"""Fault figures: 100 runs of the stateful orders environment on two worker processes,
one of them SIGKILLed at random moments and replaced, repeatedly.

  python -m bench.faults [--runs 100] [--kills 10] [--kill-every 3] [--step-delay 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from tests.fault_trial import fault_trial
from tests.harness import Stack, dev_server
from workers.cli.up import DEV_SERVER_TUNING


async def main(runs: int, kills: int, kill_every: float, step_delay: float) -> None:
    server = await dev_server(dev_server_extra_args=DEV_SERVER_TUNING, dev_server_log_level="error")
    try:
        with tempfile.TemporaryDirectory() as workdir:
            stack = Stack(
                temporal_address=server.client.service_client.config.target_host,
                workdir=Path(workdir),
            )
            await stack.start_api()
            try:
                report = await fault_trial(
                    stack,
                    runs=runs,
                    kill_every=kill_every,
                    max_kills=kills,
                    step_delay=step_delay,
                    within=1800,
                )
            finally:
                stack.stop()
        for line in report.lines():
            print(line)
    finally:
        await server.shutdown()


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--step-delay", type=float, default=0.3)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _parse(sys.argv[1:])
    asyncio.run(main(args.runs, args.kills, args.kill_every, args.step_delay))
    sys.stdout.flush()
    # temporalio/sdk-python#300: leave before the interpreter finalises the SDK.
    os._exit(0)
