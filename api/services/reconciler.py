"""The reconciler: every run and batch the store holds gets its workflow, or ends failed
with a reason, whatever stopped between writing the row and starting the workflow (an API
killed mid-request, a Temporal outage that outlived the request).

Every API process runs one. Rows pending for longer than a start takes are looked up in
Temporal by workflow id and incarnation: a missing workflow is started, one that ended
without recording the run's end fails the row, saying so. Starting is idempotent, so
several API processes may reconcile the same rows.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from api.services.errors import Conflict, Unavailable
from api.services.workflows import Found, Start, Workflows
from loopline.models import BatchStatus
from loopline.store import Stores
from loopline.store.batches import BatchRecord
from loopline.store.database import utcnow
from loopline.store.trace import PendingRun
from workflows.contract.names import batch_workflow_id, run_workflow_id
from workflows.contract.payloads import BatchInput

logger = logging.getLogger("loopline.reconciler")
PAGE = 200


@dataclass(frozen=True)
class ReconcileSettings:
    # Rows younger than this may still be on their way to Temporal in a live request.
    grace: timedelta = timedelta(seconds=5)
    every: timedelta = timedelta(seconds=2)
    session_history_limit: int = 10_000


@dataclass
class Reconciler:
    stores: Stores
    workflows: Workflows
    settings: ReconcileSettings

    async def run_forever(self) -> None:
        while True:
            try:
                await self.reconcile()
            except Unavailable as error:
                logger.warning("cannot reconcile pending runs now: %s", error)
            except Exception:
                logger.exception("reconciling pending runs failed; trying again")
            await asyncio.sleep(self.settings.every.total_seconds())

    async def reconcile(self) -> None:
        """One pass over the rows pending for longer than the grace period."""
        cutoff = utcnow() - self.settings.grace
        for run in await self.stores.runs.stale_pending(cutoff, PAGE):
            await self._run(run)
        for batch in await self.stores.batches.stale_pending(cutoff, PAGE):
            await self._batch(batch)

    async def _run(self, run: PendingRun) -> None:
        if run.run_input is None:
            await self._fail_run(run.run_id, "it was recorded without its workflow's input")
            return
        found = await self.workflows.find(run_workflow_id(run.run_id), run.incarnation)
        if found in (Found.nothing, Found.other_ended):
            summary = f"{run.spec.environment}/{run.spec.scenario} · {run.spec.model}"
            start = Workflows.run_start(run.run_input, run.incarnation, summary)
            if await self._start(start):
                logger.info("started the workflow of pending run %s", run.run_id)
            else:
                await self._fail_run(run.run_id, "another workflow holds its id")
        elif found is Found.ended:
            await self._fail_run(
                run.run_id, "its workflow ended without recording how (terminated in Temporal?)"
            )
        elif found is Found.other_running:
            await self._fail_run(run.run_id, "the running workflow of an earlier run holds its id")

    async def _batch(self, batch: BatchRecord) -> None:
        found = await self.workflows.find(batch_workflow_id(batch.batch_id), batch.incarnation)
        if found is Found.running:
            return
        if found in (Found.nothing, Found.other_ended):
            start = Workflows.batch_start(
                BatchInput(
                    batch_id=batch.batch_id,
                    total=batch.total,
                    max_parallel=batch.max_parallel or 1,
                    continue_as_new_after_events=self.settings.session_history_limit,
                ),
                batch.incarnation,
                batch.taskset_id,
                f"batch {batch.name or batch.batch_id}: {batch.total} runs",
            )
            if await self._start(start):
                logger.info("started the workflow of pending batch %s", batch.batch_id)
                return
        logger.warning("batch %s cannot start: its workflow id is taken", batch.batch_id)
        await self.stores.batches.cancel_unstarted(batch.batch_id)
        await self.stores.batches.set_status(batch.batch_id, BatchStatus.failed)

    async def _start(self, start: Start) -> bool:
        """Start the row's workflow; false when another row's workflow holds its id."""
        try:
            await self.workflows.start(start)
        except Conflict:
            return False
        return True

    async def _fail_run(self, run_id: str, why: str) -> None:
        reason = f"run {run_id} could not start: {why}"
        if await self.stores.runs.fail_pending(run_id, reason):
            logger.warning(reason)
