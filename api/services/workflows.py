"""The services' side of Temporal: starting run and batch workflows for rows of the trace
store, and talking to them (signals, updates, results), by the contract's names only.

A workflow is started for one incarnation of its row (memo `loopline_incarnation`): a run or
batch id whose row was deleted may be used again while Temporal still keeps the closed
workflow of the old one, and a row must never be answered by another row's workflow.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.services.errors import Conflict, Invalid, Unavailable
from loopline.temporal import ui_link
from workflows.contract import policies
from workflows.contract.names import (
    BATCH_WORKFLOW,
    INCARNATION_MEMO,
    NOT_ACCEPTING,
    NOT_AWAITING,
    NOT_CLIENT_AGENT,
    RUN_FAILED,
    RUN_WORKFLOW,
    TOO_MANY_STEPS,
    WRONG_TOOL_CALLS,
    batch_search_attributes,
    batch_workflow_id,
    initial_search_attributes,
    run_workflow_id,
)
from workflows.contract.payloads import BatchInput, RunInput, RunResult

ResultT = TypeVar("ResultT")
# RPC failures after which the start may have reached the server: the row is kept, and the
# reconciler finds out (a workflow started, or it starts one).
MAYBE_STARTED = frozenset({RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED})


# Update refusals that say the run is not in a state to take it: a 409 with their message.
REFUSALS = frozenset({NOT_AWAITING, NOT_ACCEPTING, NOT_CLIENT_AGENT, TOO_MANY_STEPS, RUN_FAILED})


class StartRefused(Unavailable):
    """Temporal did not take the start; `maybe_started` when it may have, unanswered."""

    def __init__(self, message: str, *, maybe_started: bool) -> None:
        super().__init__(message)
        self.maybe_started = maybe_started


class Found(StrEnum):
    """What holds a row's workflow id in Temporal."""

    nothing = "nothing"
    running = "running"
    ended = "ended"
    other_running = "other_running"
    other_ended = "other_ended"


@dataclass(frozen=True)
class Start:
    """One workflow start for one incarnation of a row."""

    workflow: str
    workflow_id: str
    arg: Any
    incarnation: str
    search_attributes: TypedSearchAttributes
    summary: str


class Workflows:
    def __init__(self, client: Client, task_queue: str, ui_url: str | None) -> None:
        self._client = client
        self._task_queue = task_queue
        self._ui_url = ui_url

    def ui_link(self, workflow_id: str | None) -> str | None:
        return ui_link(self._ui_url, self._client.namespace, workflow_id)

    @staticmethod
    def run_start(run: RunInput, incarnation: str, summary: str) -> Start:
        return Start(
            RUN_WORKFLOW,
            run_workflow_id(run.run_id),
            run,
            incarnation,
            initial_search_attributes(run),
            summary,
        )

    @staticmethod
    def batch_start(
        batch: BatchInput, incarnation: str, taskset_id: str | None, summary: str
    ) -> Start:
        return Start(
            BATCH_WORKFLOW,
            batch_workflow_id(batch.batch_id),
            batch,
            incarnation,
            batch_search_attributes(batch.batch_id, taskset_id),
            summary,
        )

    async def start(self, start: Start) -> None:
        """Start the row's workflow, or find it started already (by the reconciler).

        Conflict when another row's workflow still runs under the id."""
        try:
            await self._client.start_workflow(
                start.workflow,
                start.arg,
                id=start.workflow_id,
                task_queue=self._task_queue,
                # A closed workflow of a deleted row does not block the id; a running one does.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                memo={INCARNATION_MEMO: start.incarnation},
                search_attributes=start.search_attributes,
                static_summary=start.summary,
                task_timeout=policies.WORKFLOW_TASK_TIMEOUT,
            )
        except WorkflowAlreadyStartedError:
            if await self.find(start.workflow_id, start.incarnation) is not Found.running:
                raise Conflict(
                    f"the id of {start.workflow_id} is still held by the running workflow of an "
                    "earlier one (deleted since); choose another id"
                ) from None
        except RPCError as error:
            raise StartRefused(
                f"Temporal did not accept the workflow: {error.message}. Temporal may be down; "
                "nothing was started, try again later",
                maybe_started=error.status in MAYBE_STARTED,
            ) from error

    async def start_once(self, workflow: str, arg: Any, workflow_id: str, summary: str) -> None:
        """Start a workflow whose id names its one job; starting it again joins that one."""
        try:
            await self._client.start_workflow(
                workflow,
                arg,
                id=workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=summary,
                task_timeout=policies.WORKFLOW_TASK_TIMEOUT,
            )
        except WorkflowAlreadyStartedError:
            return
        except RPCError as error:
            raise Unavailable(f"Temporal did not accept the workflow: {error.message}") from error

    async def find(self, workflow_id: str, incarnation: str) -> Found:
        """Whether the workflow id has a workflow, of this incarnation or another."""
        try:
            described = await self._client.get_workflow_handle(workflow_id).describe()
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                return Found.nothing
            raise Unavailable(f"cannot reach Temporal: {error.message}") from error
        memo = await described.memo()
        # Workflows started before incarnations existed are the row's own.
        ours = memo.get(INCARNATION_MEMO, incarnation) == incarnation
        running = described.status is WorkflowExecutionStatus.RUNNING
        if ours:
            return Found.running if running else Found.ended
        return Found.other_running if running else Found.other_ended

    async def signal(self, workflow_id: str, signal: str, arg: Any) -> None:
        await self._call(self._client.get_workflow_handle(workflow_id).signal(signal, arg))

    async def update(
        self,
        workflow_id: str,
        update: str,
        arg: Any,
        result_type: type[ResultT],
        update_id: str | None = None,
    ) -> ResultT:
        """An update; one sent again with the same `update_id` is answered once by Temporal."""
        handle = self._client.get_workflow_handle(workflow_id)
        result: ResultT = await self._call(
            handle.execute_update(update, arg, id=update_id, result_type=result_type)
        )
        return result

    async def wait(self, run_id: str, seconds: float) -> None:
        """Until the run's workflow ends, at most `seconds`; the store holds the outcome."""
        handle = self._client.get_workflow_handle(run_workflow_id(run_id), result_type=RunResult)
        try:
            await asyncio.wait_for(handle.result(), timeout=seconds)
        except (TimeoutError, WorkflowFailureError, RPCError):
            return

    async def _call(self, call: Any) -> Any:
        """A signal or update; the workflow's refusals become Conflict and Invalid."""
        try:
            return await call
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type == WRONG_TOOL_CALLS:
                raise Invalid(["body", "tool_results"], cause.message) from error
            if isinstance(cause, ApplicationError) and cause.type in REFUSALS:
                raise Conflict(cause.message) from error
            raise
        except WorkflowUpdateRPCTimeoutOrCancelledError as error:
            raise Unavailable(f"the run's workflow did not answer in time: {error}") from error
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                raise Conflict(f"the run's workflow has ended: {error.message}") from error
            raise Unavailable(f"could not reach the run's workflow: {error.message}") from error
