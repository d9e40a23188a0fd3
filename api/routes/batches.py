"""Native API v1: batches of rollouts with a parallelism cap, their scores, cancel, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from api.access import BatchRead, BatchWrite, ReadProject, WriteProject
from api.deps import Batches, Offset
from loopline.models import (
    BatchCancelResult,
    BatchDeleteResult,
    BatchKind,
    BatchPage,
    BatchRequest,
    BatchStatus,
    BatchView,
    CancelRequest,
    RunPage,
)

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "A batch with this batch_id and body already exists"}},
)
async def start_batch(
    request: BatchRequest, response: Response, batches: Batches, project: WriteProject
) -> BatchView:
    """Run every task rollout_count times, at most max_parallel runs at once."""
    view, created = await batches.start_batch(request, project)
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("")
async def list_batches(
    batches: Batches,
    project: ReadProject,
    status: BatchStatus | None = None,
    kind: BatchKind | None = None,
    taskset: Annotated[str | None, Query(description="A taskset id or name.")] = None,
    source: Annotated[str | None, Query(description="Where batches were started from.")] = None,
    include_runs: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> BatchPage:
    """Batches, newest first."""
    return await batches.list_batches(
        project=project,
        status=status,
        kind=kind,
        taskset=taskset,
        source=source,
        include_runs=include_runs,
        limit=limit,
        offset=offset,
    )


@router.get("/{batch_id}", dependencies=[BatchRead])
async def get_batch(batch_id: str, batches: Batches, include_runs: bool = True) -> BatchView:
    """Status counts, scores (mean reward, success rate, pass@k, per task), usage, run ids."""
    return await batches.get_batch(batch_id, include_runs=include_runs)


@router.get("/{batch_id}/runs", dependencies=[BatchRead])
async def batch_runs(
    batch_id: str,
    batches: Batches,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> RunPage:
    """The batch's runs in full (reward, evaluations, answer, usage), newest first."""
    return await batches.runs(batch_id, limit, offset)


@router.post("/{batch_id}/cancel", dependencies=[BatchWrite])
async def cancel_batch(
    batch_id: str,
    batches: Batches,
    request: Annotated[CancelRequest | None, Body()] = None,
) -> BatchCancelResult:
    """Start no more runs and stop the active ones gracefully (their teardown runs)."""
    return await batches.cancel_batch(batch_id, request or CancelRequest())


@router.delete("/{batch_id}", dependencies=[BatchWrite])
async def delete_batch(batch_id: str, batches: Batches) -> BatchDeleteResult:
    """Delete an ended batch with its runs, their events and artifacts."""
    return await batches.delete_batch(batch_id)
