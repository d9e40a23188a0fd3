"""A run's events as they happen, for every live stream of the API (native SSE, dialect
streams, waiting for a run's turn).

One feed per live run, shared by all its subscribers: one ticker asks the store for the
progress of every followed run in one statement per tick, reads each run's new events
once, and wakes its subscribers, who slice them from the feed's recent events. A subscriber
that starts further back reads its own way up from the store first. Writes in this
process, and on PostgreSQL NOTIFY from every process, wake the ticker at once.

A wake costs each subscriber no task: they all wait on the feed's one pulse future, and
each takes what a wake brought as one batch (one write to its connection).

Every recorded event goes out once, in sequence order, so a client that resumes after the
last seq it received gets no gap and no repeat. Model text streamed by the provider goes out
as `TokenDelta`s: live only (the full reply follows as a message event).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from api.services.access import Access, Caller, Need
from loopline.models import EventFilter, EventType, EventView, Provider, RunStatus
from loopline.store import TraceStore
from workflows.contract.names import run_workflow_id
from workflows.contract.payloads import TOKENS_TOPIC, TokenDelta

PAGE = 500
# Recent events a feed keeps for subscribers that are (nearly) caught up.
RECENT_EVENTS = 2000
# Live text a slow subscriber may have waiting before the oldest is dropped.
DELTA_BACKLOG = 1000


@dataclass(frozen=True)
class KeepAlive:
    """Nothing happened for a while; the connection is still open."""


@dataclass(frozen=True)
class StreamEnd:
    last_seq: int


LiveItem = EventView | TokenDelta | KeepAlive | StreamEnd


@dataclass(frozen=True)
class EventTypes:
    """Which events a subscriber wants: these (all when empty), less the excluded."""

    only: frozenset[EventType] = frozenset()
    excluded: frozenset[EventType] = frozenset()

    def passes(self, event: EventView) -> bool:
        if self.only and event.type not in self.only:
            return False
        return event.type not in self.excluded


def _new_pulse() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


@dataclass
class _Feed:
    run_id: str
    last_seq: int
    status: RunStatus
    recent: deque[EventView] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    # Resolved, and replaced, whenever the feed changes: every subscriber awaits this one.
    pulse: asyncio.Future[None] = field(default_factory=_new_pulse)
    subscribers: int = 0
    # Each subscriber's live text not yet sent; the oldest drops once it is full.
    deltas: list[deque[TokenDelta]] = field(default_factory=list)
    follower: asyncio.Task[None] | None = None

    @property
    def ended(self) -> bool:
        return self.status.is_final

    def wake(self) -> None:
        pulse, self.pulse = self.pulse, _new_pulse()
        pulse.set_result(None)

    async def changed(self, seconds: float) -> None:
        """Return on the feed's next change, or after `seconds`."""
        await asyncio.wait({self.pulse}, timeout=seconds)

    def after(self, cursor: int) -> list[EventView] | None:
        """The feed's events after `cursor`; None when they go back further than it keeps."""
        if cursor >= self.last_seq:
            return []
        if self.recent and self.recent[0].seq <= cursor + 1:
            return [event for event in self.recent if event.seq > cursor]
        return None


class LiveEvents:
    def __init__(
        self,
        store: TraceStore,
        access: Access,
        client: Client,
        poll_seconds: float,
        keepalive_seconds: float,
    ) -> None:
        self._store = store
        self._access = access
        self._client = client
        self._poll_seconds = poll_seconds
        self._keepalive_seconds = keepalive_seconds
        self._feeds: dict[str, _Feed] = {}
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever())

    async def close(self) -> None:
        tasks = [self._ticker, *(feed.follower for feed in self._feeds.values())]
        for task in tasks:
            if task is not None:
                task.cancel()
        for task in tasks:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def heard(self, run_id: str) -> None:
        """A run has new events (a write in this process, or a notice from the database)."""
        if run_id in self._feeds:
            self._wake.set()

    # --- subscribing ---------------------------------------------------------------------------

    async def stream(
        self, caller: Caller, run_id: str, after: int, types: EventTypes
    ) -> AsyncIterator[list[LiveItem]]:
        """The run's events after `after` as they happen, in batches of what arrived
        together, ending with a StreamEnd once the run has ended; KeepAlive when nothing
        happened for the keep-alive interval."""
        await self._access.run(caller, run_id, Need.events)
        return self.batches(run_id, after, types)

    async def follow(
        self, run_id: str, after: int, types: EventTypes = EventTypes()
    ) -> AsyncIterator[LiveItem]:
        """`stream`'s items one by one, for a caller already allowed to see the run."""
        async for batch in self.batches(run_id, after, types):
            for item in batch:
                yield item

    async def batches(
        self, run_id: str, after: int, types: EventTypes = EventTypes()
    ) -> AsyncIterator[list[LiveItem]]:
        """`stream` for a caller already allowed to see the run."""
        feed = await self._join(run_id)
        deltas: deque[TokenDelta] = deque(maxlen=DELTA_BACKLOG)
        feed.deltas.append(deltas)
        try:
            async for batch in self._batches(feed, after, types, deltas):
                yield batch
        finally:
            feed.deltas.remove(deltas)
            self._leave(feed)

    async def until_status(
        self, run_id: str, reached: Callable[[RunStatus], bool], seconds: float
    ) -> None:
        """Return once the run's status satisfies `reached`, or after `seconds`."""
        feed = await self._join(run_id)
        deadline = time.monotonic() + seconds
        try:
            while not reached(feed.status) and (left := deadline - time.monotonic()) > 0:
                await feed.changed(left)
        finally:
            self._leave(feed)

    async def _batches(
        self, feed: _Feed, cursor: int, types: EventTypes, deltas: deque[TokenDelta]
    ) -> AsyncIterator[list[LiveItem]]:
        quiet_since = time.monotonic()
        while True:
            events = feed.after(cursor)
            if events is None:
                events = await self._store.events(
                    feed.run_id, EventFilter(after=cursor, limit=PAGE)
                )
                # Nothing after the cursor though the feed is further on: the run's
                # events were deleted; there is nothing to catch up on.
                cursor = events[-1].seq if events else max(cursor, feed.last_seq)
            elif events:
                cursor = events[-1].seq
            batch: list[LiveItem] = [event for event in events if types.passes(event)]
            if cursor >= feed.last_seq:
                batch.extend(deltas)
                deltas.clear()
                if feed.ended:
                    yield [*batch, StreamEnd(last_seq=cursor)]
                    return
            if batch:
                yield batch
                quiet_since = time.monotonic()
            if cursor < feed.last_seq or deltas:
                continue
            wait = self._keepalive_seconds - (time.monotonic() - quiet_since)
            if wait <= 0:
                yield [KeepAlive()]
                quiet_since = time.monotonic()
                continue
            await feed.changed(wait)

    async def _join(self, run_id: str) -> _Feed:
        feed = self._feeds.get(run_id)
        if feed is None:
            progress = (await self._store.progress([run_id])).get(run_id)
            feed = self._feeds.get(run_id)  # another subscriber may have made it meanwhile
            if feed is None:
                status = progress.status if progress else RunStatus.failed
                feed = _Feed(run_id, progress.last_seq if progress else 0, status)
                self._feeds[run_id] = feed
                if not feed.ended:
                    feed.follower = asyncio.create_task(self._follow_text(feed))
        feed.subscribers += 1
        return feed

    def _leave(self, feed: _Feed) -> None:
        feed.subscribers -= 1
        if feed.subscribers == 0 and self._feeds.get(feed.run_id) is feed:
            del self._feeds[feed.run_id]
            if feed.follower is not None:
                feed.follower.cancel()

    # --- the ticker ----------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
            self._wake.clear()
            if self._feeds:
                with contextlib.suppress(Exception):  # the next tick tries again
                    await self._tick()

    async def _tick(self) -> None:
        feeds = dict(self._feeds)
        progress = await self._store.progress(list(feeds))
        for run_id, feed in feeds.items():
            now = progress.get(run_id)
            if now is not None:
                await self._catch_up(feed, now.last_seq, now.status)

    async def _catch_up(self, feed: _Feed, last_seq: int, status: RunStatus) -> None:
        """Read the feed's new events; wake its subscribers if anything changed."""
        before = (feed.last_seq, feed.status)
        while last_seq > feed.last_seq:
            page = await self._store.events(
                feed.run_id, EventFilter(after=feed.last_seq, limit=PAGE)
            )
            if not page:
                break
            feed.recent.extend(page)
            feed.last_seq = page[-1].seq
        # A status counts once the events up to it are in the feed: the end comes last.
        if feed.last_seq >= last_seq:
            feed.status = status
        if (feed.last_seq, feed.status) != before:
            feed.wake()

    async def _follow_text(self, feed: _Feed) -> None:
        """Best effort: live text is a nicety, the recorded events are the record."""
        with contextlib.suppress(Exception):
            spec = await self._store.run_spec(feed.run_id)
            if spec.llm.provider is Provider.scripted:
                return
            stream = WorkflowStreamClient.create(self._client, run_workflow_id(feed.run_id))
            offset = await stream.get_offset()
            async for item in stream.subscribe(TOKENS_TOPIC, offset, result_type=TokenDelta):
                for deltas in feed.deltas:
                    deltas.append(item.data)
                feed.wake()
