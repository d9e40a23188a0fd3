"""Heartbeats of a regular activity while it works, so a dead worker is noticed within the
workflow's heartbeat timeout instead of the activity's whole start-to-close timeout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

HEARTBEAT_EVERY_SECONDS = 3.0


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    if activity.info().is_local:
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
