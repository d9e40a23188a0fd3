"""Native API v1: batches of rollouts with a parallelism cap, their scores, cancel, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from api.http.deps import Offset, Svc, Who
from api.http.routing import DocumentedRoute
from api.services.batches import BatchListing
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

router = APIRouter(prefix="/v1/batches", tags=["batches"], route_class=DocumentedRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "A batch with this batch_id and body already exists"}},
)
async def start_batch(request: BatchRequest, response: Response, svc: Svc, who: Who) -> BatchView:
    """Run every task rollout_count times, at most max_parallel runs at once."""
    view, created = await svc.batches.start_batch(who, request)
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("")
async def list_batches(
    svc: Svc,
    who: Who,
    status: BatchStatus | None = None,
    kind: BatchKind | None = None,
    taskset: Annotated[str | None, Query(description="A taskset id or name.")] = None,
    source: Annotated[str | None, Query(description="Where batches were started from.")] = None,
    include_runs: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> BatchPage:
    """Batches, newest first."""
    return await svc.batches.list_batches(
        who,
        BatchListing(status=status, kind=kind, source=source),
        taskset=taskset,
        include_runs=include_runs,
        limit=limit,
        offset=offset,
    )


@router.get("/{batch_id}")
async def get_batch(batch_id: str, svc: Svc, who: Who, include_runs: bool = True) -> BatchView:
    """Status counts, scores (mean reward, success rate, pass@k, per task), usage, run ids."""
    return await svc.batches.get_batch(who, batch_id, include_runs=include_runs)


@router.get("/{batch_id}/runs")
async def batch_runs(
    batch_id: str,
    svc: Svc,
    who: Who,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> RunPage:
    """The batch's runs in full (reward, evaluations, answer, usage), in start order."""
    return await svc.batches.runs(who, batch_id, limit, offset)


@router.post("/{batch_id}/cancel")
async def cancel_batch(
    batch_id: str, svc: Svc, who: Who, request: Annotated[CancelRequest | None, Body()] = None
) -> BatchCancelResult:
    """Start no more runs and stop the active ones gracefully (their teardown runs)."""
    return await svc.batches.cancel_batch(who, batch_id, request or CancelRequest())


@router.delete("/{batch_id}")
async def delete_batch(batch_id: str, svc: Svc, who: Who) -> BatchDeleteResult:
    """Delete an ended batch with its runs, their events and artifacts."""
    return await svc.batches.delete_batch(who, batch_id)
