"""Streamed model text, coalesced and published on the run workflow's stream.

Publishing goes through the SDK's Workflow Streams: each flush is one signal, so history
grows with the number of flushes (a few per second at most), not with the number of tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from types import TracebackType

from temporalio import activity
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from loopline.models import ModelConfig
from workflows.contract.payloads import TOKENS_TOPIC, TokenDelta

FLUSH_EVERY = timedelta(milliseconds=300)
# A stream that cannot be delivered must not hold up (or fail) the model step.
GIVE_UP_AFTER = timedelta(seconds=30)


class TokenStream:
    def __init__(self, step: int, purpose: str) -> None:
        self._step = step
        self._purpose = purpose
        self._attempt = activity.info().attempt
        self._pending: list[str] = []
        self._client = WorkflowStreamClient.from_within_activity(
            batch_interval=FLUSH_EVERY, max_retry_duration=GIVE_UP_AFTER
        )
        self._topic = self._client.topic(TOKENS_TOPIC, type=TokenDelta)
        self._coalescer: asyncio.Task[None] | None = None

    def push(self, text: str) -> None:
        self._pending.append(text)

    async def __aenter__(self) -> TokenStream:
        await self._client.__aenter__()
        self._coalescer = asyncio.create_task(self._coalesce())
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        if self._coalescer is not None:
            self._coalescer.cancel()
        self._publish_pending()
        try:
            await self._client.__aexit__(None, None, None)
        except Exception as error:
            activity.logger.warning("token stream of step %d not delivered: %s", self._step, error)

    async def _coalesce(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY.total_seconds())
            self._publish_pending()

    def _publish_pending(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._topic.publish(
            TokenDelta(step=self._step, attempt=self._attempt, purpose=self._purpose, text=text)
        )


@contextlib.asynccontextmanager
async def token_stream(
    step: int, purpose: str, config: ModelConfig
) -> AsyncIterator[TokenStream | None]:
    """Live text for subscribers, from streamed calls in regular activities only (a local
    activity's workflow task is busy until it ends, so nobody could read it live)."""
    if activity.info().is_local or not config.stream:
        yield None
        return
    async with TokenStream(step, purpose) as stream:
        yield stream
