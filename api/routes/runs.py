"""Native API v1: runs, their events (JSON or live SSE), logs and caller-set fields."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from api.access import ReadProject, RunOrTokenRead, RunOrTokenWrite, RunRead, RunWrite, WriteProject
from api.deps import AfterSeq, Live, Offset, Service
from api.errors import InvalidRequestError
from api.live import EventFilter
from loopline.models import (
    AppendLogRequest,
    AppendLogResult,
    EventType,
    EventView,
    RunPage,
    RunPatch,
    RunRequest,
    RunStatus,
    RunView,
)

router = APIRouter(prefix="/v1/runs", tags=["runs"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
TYPES_HELP = f"Comma-separated event types: {', '.join(t.value for t in EventType)}"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "A run with this run_id and body already exists"}},
)
async def start_run(
    request: RunRequest, response: Response, service: Service, project: WriteProject
) -> RunView:
    """Start an agent episode; with `sync` wait up to `timeout` seconds for its result."""
    view, created = await service.start_run(request, project)
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("")
async def list_runs(
    service: Service,
    project: ReadProject,
    environment: str | None = None,
    scenario: str | None = None,
    status: RunStatus | None = None,
    batch_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> RunPage:
    """Runs, newest first."""
    return await service.list_runs(
        project=project,
        environment=environment,
        scenario=scenario,
        status=status,
        batch_id=batch_id,
        limit=limit,
        offset=offset,
    )


@router.get("/{run_id}", dependencies=[RunRead])
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


@router.patch("/{run_id}", dependencies=[RunWrite])
async def patch_run(run_id: str, patch: RunPatch, service: Service) -> RunView:
    """Set stage, branch, output, client_state or error_message; `status` may only be set
    to `cancelled` (cancels the run) or `completed` (closes a session)."""
    return await service.patch_run(run_id, patch)


@router.put("/{run_id}/output", dependencies=[RunWrite])
async def set_output(run_id: str, service: Service, output: Annotated[Any, Body()]) -> RunView:
    """Set the run's output (a PR URL, a commit SHA, any JSON value)."""
    return await service.patch_run(run_id, RunPatch(output=output))


@router.get(
    "/{run_id}/events",
    dependencies=[RunOrTokenRead],
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def list_events(
    run_id: str,
    request: Request,
    service: Service,
    live: Live,
    after: AfterSeq = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    event_types: Annotated[str | None, Query(description=TYPES_HELP)] = None,
    exclude_types: Annotated[str | None, Query(description=TYPES_HELP)] = None,
    since: Annotated[datetime | None, Query(description="Only events recorded after")] = None,
    until: Annotated[datetime | None, Query(description="Only events recorded up to")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    """Events in sequence order. With `Accept: text/event-stream`, a live SSE stream that
    resumes after `Last-Event-ID` (or `after`) and ends when the run ends."""
    types = parse_event_types(event_types, "event_types")
    excluded = parse_event_types(exclude_types, "exclude_types")
    if "text/event-stream" in request.headers.get("accept", ""):
        start = resume_point(last_event_id, after)
        await service.get_run(run_id)  # a 404 now, not a broken stream later
        frames = live.stream(run_id, start, EventFilter(frozenset(types), frozenset(excluded)))
        return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)
    events: list[EventView] = await service.events(
        run_id,
        after=after,
        limit=limit,
        types=types,
        exclude_types=excluded,
        since=since,
        until=until,
    )
    return events


@router.post("/{run_id}/logs", dependencies=[RunOrTokenWrite])
async def append_log(run_id: str, request: AppendLogRequest, service: Service) -> AppendLogResult:
    """Append log entries from outside the run (a sandbox, a CI job); each becomes a `log`
    event. Entries with an `entry_id` already appended are skipped."""
    return await service.append_logs(run_id, request.entries)


@router.get(
    "/{run_id}/logs",
    dependencies=[RunRead],
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def download_logs(
    run_id: str,
    service: Service,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingResponse:
    """The run's log events as JSON Lines, oldest first."""
    await service.get_run(run_id)

    async def lines() -> AsyncIterator[str]:
        after = 0
        while page := await service.events(
            run_id, after=after, limit=1000, types=[EventType.log], since=since, until=until
        ):
            for event in page:
                yield event.model_dump_json() + "\n"
            after = page[-1].seq

    headers = {"Content-Disposition": f'attachment; filename="{run_id}.logs.jsonl"'}
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)


def parse_event_types(value: str | None, field: str) -> list[EventType]:
    if not value:
        return []
    names = [name.strip() for name in value.split(",") if name.strip()]
    known = {t.value for t in EventType}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InvalidRequestError(
            ["query", field],
            f"unknown event type {', '.join(unknown)}; known: {', '.join(sorted(known))}",
        )
    return [EventType(name) for name in names]


def resume_point(last_event_id: str | None, after: int) -> int:
    if last_event_id is None:
        return after
    try:
        return max(int(last_event_id), after)
    except ValueError:
        raise InvalidRequestError(
            ["header", "last-event-id"], "Last-Event-ID must be the seq of an event"
        ) from None
