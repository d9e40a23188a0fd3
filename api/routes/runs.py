"""Native API v1: runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from api.deps import Service
from loopline.models import CancelRequest, EventView, RunPage, RunRequest, RunStatus, RunView

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "A run with this run_id and body already exists"}},
)
async def start_run(request: RunRequest, response: Response, service: Service) -> RunView:
    """Start an agent episode; with `sync` wait up to `timeout` seconds for its result."""
    view, created = await service.start_run(request)
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("")
async def list_runs(
    service: Service,
    environment: str | None = None,
    scenario: str | None = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> RunPage:
    """Runs, newest first."""
    return await service.list_runs(
        environment=environment, scenario=scenario, status=status, limit=limit, offset=offset
    )


@router.get("/{run_id}")
async def get_run(
    run_id: str,
    service: Service,
    include_trajectory: bool = False,
    include_state: bool = False,
) -> RunView:
    """A run's status, reward, answer and usage; its events and final state on request."""
    return await service.get_run(
        run_id, include_trajectory=include_trajectory, include_state=include_state
    )


@router.get("/{run_id}/events")
async def list_events(
    run_id: str,
    service: Service,
    after: Annotated[int, Query(ge=0, description="Only events with a larger seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventView]:
    return await service.events(run_id, after=after, limit=limit)


@router.post("/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_run(
    run_id: str, service: Service, request: Annotated[CancelRequest | None, Body()] = None
) -> RunView:
    """Ask a run to stop gracefully; it still tears down and records a final status."""
    return await service.cancel_run(run_id, request or CancelRequest())
