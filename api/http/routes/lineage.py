"""Native API v1: replays and forks of recorded runs, and what a replay changed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from api.http.deps import Svc, Who
from api.http.routing import DocumentedRoute
from loopline.models import ForkResult, ReplayResult
from loopline.models.lineage import ForkRequest, ReplayReport, ReplayRequest

router = APIRouter(prefix="/v1/runs", tags=["replays and forks"], route_class=DocumentedRoute)


@router.post(
    "/{run_id}/replay",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "A replay with this run_id and body already exists"}},
)
async def replay_run(
    run_id: str,
    response: Response,
    svc: Svc,
    who: Who,
    request: Annotated[ReplayRequest | None, Body()] = None,
) -> ReplayResult:
    """Run an ended run again against the environment and evaluation code deployed now,
    playing its recorded model turns (no model is called); with `wait`, report where tool
    results, state and reward differ."""
    result, created = await svc.lineage.replay(who, run_id, request or ReplayRequest())
    if not created:
        response.status_code = status.HTTP_200_OK
    return result


@router.get("/{run_id}/replay-report")
async def replay_report(run_id: str, svc: Svc, who: Who) -> ReplayReport:
    """What a replay did differently from its parent (for a fork: in the replayed steps)."""
    return await svc.lineage.report(who, run_id)


@router.post(
    "/{run_id}/forks",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Forks with this run_id and body already exist"}},
)
async def fork_run(
    run_id: str, request: ForkRequest, response: Response, svc: Svc, who: Who
) -> ForkResult:
    """Start new runs from step `step` of an ended run: its conversation and environment
    state up to there are rebuilt by replaying its recorded steps, then another model,
    prompt or script goes on."""
    result, created = await svc.lineage.fork(who, run_id, request)
    if not created:
        response.status_code = status.HTTP_200_OK
    return result
