"""The batch workflow: a parent that runs its runs as child workflows, at most
`max_parallel` at once, and continues as new (between pages) when its history grows long.

The runs and their inputs are in the trace store already; the batch reads them a page at
a time, so its history holds no more than the child workflows it started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from loopline.models import BatchStatus, CancelRequest
    from workflows.calls import execute
    from workflows.contract import policies, stubs
    from workflows.contract.names import (
        BATCH_WORKFLOW,
        CANCEL_SIGNAL,
        PROGRESS_QUERY,
        initial_search_attributes,
        run_workflow_id,
    )
    from workflows.contract.payloads import (
        BatchEnd,
        BatchInput,
        BatchProgress,
        RolloutPage,
        RunInput,
        RunResult,
    )
    from workflows.run import RunWorkflow

PAGE_SIZE = 100

RunHandle = ChildWorkflowHandle[RunWorkflow, RunResult]


@workflow.defn(name=BATCH_WORKFLOW)
class BatchWorkflow:
    @workflow.init
    def __init__(self, batch: BatchInput) -> None:
        self._batch = batch
        self._started = batch.next_index
        # Run id → handle, None while its start is on the way: it counts against the cap.
        self._active: dict[str, RunHandle | None] = {}
        self._cancel: CancelRequest | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @workflow.run
    async def run(self, batch: BatchInput) -> BatchProgress:
        if batch.next_index == 0:
            await self._set_status(BatchStatus.running)
        try:
            await self._start_runs()
        except asyncio.CancelledError:
            # Cancelled through Temporal itself: stop the runs gracefully, as a cancel would.
            self.cancel(CancelRequest(reason="the batch workflow was cancelled"))
        workflow.set_current_details(f"waiting for the last {len(self._active)} runs")
        await workflow.wait_condition(lambda: not self._active)
        if self._cancel is None and self._started < batch.total:
            workflow.continue_as_new(batch.model_copy(update={"next_index": self._started}))
        final = BatchStatus.cancelled if self._cancel is not None else BatchStatus.completed
        await self._set_status(final)
        workflow.set_current_details(f"{final.value}: {self._started}/{batch.total} runs started")
        return self.progress()

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> BatchProgress:
        return BatchProgress(
            batch_id=self._batch.batch_id,
            total=self._batch.total,
            started=self._started,
            active=len(self._active),
            cancel_requested=self._cancel is not None,
        )

    @workflow.signal(name=CANCEL_SIGNAL)
    def cancel(self, request: CancelRequest) -> None:
        """Start no more runs and ask each active one to stop (teardown still runs)."""
        if self._cancel is not None:
            return
        self._cancel = request
        workflow.logger.info("batch cancel requested: %s", request.reason)
        for handle in self._active.values():
            if handle is not None:
                self._stop(handle, request)

    async def _start_runs(self) -> None:
        """Start runs page by page while below the cap; returns when all are started, the
        batch is cancelled, or its history is long enough to continue as new."""
        batch = self._batch
        while self._started < batch.total and self._cancel is None:
            page = await execute(
                stubs.BATCH_ROLLOUTS,
                RolloutPage(batch_id=batch.batch_id, offset=self._started, limit=PAGE_SIZE),
                policies.BATCH_STORE,
                f"runs {self._started + 1}-{self._started + PAGE_SIZE}",
            )
            if not page:
                return
            for run in page:
                await workflow.wait_condition(
                    lambda: len(self._active) < batch.max_parallel or self._cancel is not None
                )
                if self._cancel is not None:
                    return
                self._active[run.run_id] = None
                self._started += 1
                self._spawn(self._rollout(run))
                workflow.set_current_details(
                    f"{self._started}/{batch.total} runs started, {len(self._active)} running"
                )
                if self._history_is_long():
                    return

    async def _rollout(self, run: RunInput) -> None:
        try:
            handle = await workflow.start_child_workflow(
                RunWorkflow.run,
                run,
                id=run_workflow_id(run.run_id),
                search_attributes=initial_search_attributes(run),
                static_summary=f"{run.environment}/{run.scenario} · {run.model}",
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                task_timeout=policies.WORKFLOW_TASK_TIMEOUT,
            )
            self._active[run.run_id] = handle
            if self._cancel is not None:
                self._stop(handle, self._cancel)
            await handle
        except ChildWorkflowError as error:
            # The run's own record (status, error) is in the trace store already.
            workflow.logger.info("run %s ended with %s", run.run_id, error.cause)
        finally:
            del self._active[run.run_id]

    def _stop(self, handle: RunHandle, cancel: CancelRequest) -> None:
        request = CancelRequest(reason=f"batch cancelled: {cancel.reason}")
        self._spawn(self._signal_cancel(handle, request))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _signal_cancel(self, handle: RunHandle, request: CancelRequest) -> None:
        try:
            await handle.signal(RunWorkflow.cancel, request)
        except Exception as error:
            # It ended on its own meanwhile; there is nothing left to stop.
            workflow.logger.info("run %s not signalled: %s", handle.id, error)

    async def _set_status(self, status: BatchStatus) -> None:
        await execute(
            stubs.BATCH_STATUS,
            BatchEnd(batch_id=self._batch.batch_id, status=status),
            policies.BATCH_STORE,
            status.value,
        )

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() >= self._batch.continue_as_new_after_events
            or info.is_continue_as_new_suggested()
        )
