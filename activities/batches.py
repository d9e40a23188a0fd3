"""What a batch workflow reads and writes: the next runs to start, and its own status."""

from __future__ import annotations

from temporalio import activity

from loopline.catalog import Catalog
from loopline.models import BatchEnd, BatchStatus, RolloutPage, RunInput
from loopline.store import TraceStore


class BatchActivities:
    def __init__(self, store: TraceStore, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog

    @activity.defn(name="batch_rollouts")
    async def batch_rollouts(self, page: RolloutPage) -> list[RunInput]:
        """The next page of the batch's runs, in order; read, not carried in history."""
        return await self.store.run_inputs(page.batch_id, page.offset, page.limit)

    @activity.defn(name="batch_status")
    async def batch_status(self, end: BatchEnd) -> None:
        """Record the batch's status; a cancelled batch's never-started runs end cancelled."""
        if end.status is BatchStatus.cancelled:
            await self.catalog.cancel_unstarted(end.batch_id)
        await self.catalog.set_batch_status(end.batch_id, end.status)
