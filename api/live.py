"""A run's events as a Server-Sent Events stream, live until the run ends.

Every recorded event goes out once, in sequence order, with its `seq` as the SSE id, so a
client that reconnects with `Last-Event-ID` resumes after the last event it received, with
no gap and no repeat. Model text that the provider streams goes out as `delta` events
without an id: it is live-only (the full reply follows as a `message` event) and does not
move the resume point. Comment lines keep idle connections open through proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from loopline.models import TOKENS_TOPIC, EventType, EventView, Provider, RunStatus, TokenDelta
from loopline.store import TraceStore, workflow_id_for

PAGE = 500
FINAL_STATUSES = {status.value for status in RunStatus if status.is_final}


@dataclass(frozen=True)
class EventFilter:
    types: frozenset[EventType] = frozenset()
    exclude_types: frozenset[EventType] = frozenset()

    def passes(self, event: EventView) -> bool:
        if self.types and event.type not in self.types:
            return False
        return event.type not in self.exclude_types


class LiveEvents:
    def __init__(
        self, store: TraceStore, client: Client, poll_seconds: float, keepalive_seconds: float
    ) -> None:
        self._store = store
        self._client = client
        self._poll_seconds = poll_seconds
        self._keepalive_seconds = keepalive_seconds

    async def stream(self, run_id: str, after: int, only: EventFilter) -> AsyncIterator[str]:
        """SSE frames of the run's events after `after`, ending with an `end` event."""
        view = await self._store.get_run(run_id)
        spec = await self._store.run_spec(run_id)
        deltas: asyncio.Queue[TokenDelta] = asyncio.Queue()
        follower = None
        if not view.status.is_final and spec.llm.provider is not Provider.scripted:
            follower = asyncio.create_task(self._follow_deltas(run_id, deltas))
        try:
            async for frame in self._frames(run_id, after, only, view.status.is_final, deltas):
                yield frame
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower

    async def _frames(
        self,
        run_id: str,
        cursor: int,
        only: EventFilter,
        ended: bool,
        deltas: asyncio.Queue[TokenDelta],
    ) -> AsyncIterator[str]:
        last_sent = time.monotonic()
        while True:
            page = await self._store.events(run_id, after=cursor, limit=PAGE)
            for event in page:
                cursor = event.seq
                ended = ended or _is_final(event)
                if only.passes(event):
                    yield _event_frame(event)
                    last_sent = time.monotonic()
            if len(page) == PAGE:
                continue
            if ended:
                yield f"event: end\ndata: {json.dumps({'last_seq': cursor})}\n\n"
                return
            while not deltas.empty():
                yield _delta_frame(deltas.get_nowait())
                last_sent = time.monotonic()
            if time.monotonic() - last_sent >= self._keepalive_seconds:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            # Sleep until the next poll, waking early for live text.
            try:
                delta = await asyncio.wait_for(deltas.get(), timeout=self._poll_seconds)
            except TimeoutError:
                continue
            yield _delta_frame(delta)
            last_sent = time.monotonic()

    async def _follow_deltas(self, run_id: str, deltas: asyncio.Queue[TokenDelta]) -> None:
        """Best effort: live text is a nicety, the recorded events are the record."""
        stream = WorkflowStreamClient.create(self._client, workflow_id_for(run_id))
        with contextlib.suppress(Exception):
            offset = await stream.get_offset()
            async for item in stream.subscribe(TOKENS_TOPIC, offset, result_type=TokenDelta):
                deltas.put_nowait(item.data)


def _is_final(event: EventView) -> bool:
    return event.type is EventType.status and event.data.get("status") in FINAL_STATUSES


def _event_frame(event: EventView) -> str:
    return f"id: {event.seq}\nevent: {event.type.value}\ndata: {event.model_dump_json()}\n\n"


def _delta_frame(delta: TokenDelta) -> str:
    return f"event: delta\ndata: {delta.model_dump_json()}\n\n"
