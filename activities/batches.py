"""What a batch workflow reads and writes: the next runs to start, and its own status."""

from __future__ import annotations

from temporalio import activity

from loopline.models import BatchStatus
from loopline.store import BatchStore, TraceStore
from workflows.contract import stubs
from workflows.contract.payloads import BatchEnd, RolloutPage, RunInput


class BatchActivities:
    def __init__(self, store: TraceStore, batches: BatchStore) -> None:
        self.store = store
        self.batches = batches

    @activity.defn(name=stubs.BATCH_ROLLOUTS.name)
    async def batch_rollouts(self, page: RolloutPage) -> list[RunInput]:
        """The next page of the batch's runs, in order; read, not carried in history."""
        return await self.store.run_inputs(page.batch_id, page.offset, page.limit)

    @activity.defn(name=stubs.BATCH_STATUS.name)
    async def batch_status(self, end: BatchEnd) -> None:
        """Record the batch's status; a cancelled batch's never-started runs end cancelled."""
        if end.status is BatchStatus.cancelled:
            await self.batches.cancel_unstarted(end.batch_id)
        await self.batches.set_status(end.batch_id, end.status)
