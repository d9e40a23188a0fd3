"""Native API v1: runs, their events (JSON or live SSE), logs and caller-set fields."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from api.http.deps import AfterSeq, Offset, StreamWho, Svc, Who
from api.http.routing import DocumentedRoute
from api.http.sse import (
    TYPES_HELP,
    TYPES_SCHEMA,
    event_types,
    native_frames,
    resume_point,
    sse_response,
)
from api.services.runs import RunListing
from loopline.models import (
    AppendLogRequest,
    AppendLogResult,
    EventFilter,
    EventView,
    IsoDateTime,
    RunPage,
    RunPatch,
    RunRequest,
    RunStatus,
    RunView,
)

router = APIRouter(prefix="/v1/runs", tags=["runs"], route_class=DocumentedRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "A run with this run_id and body already exists"}},
)
async def start_run(request: RunRequest, response: Response, svc: Svc, who: Who) -> RunView:
    """Start an agent episode; with `sync` wait up to `timeout` seconds for its result."""
    view, created = await svc.runs.start_run(who, request)
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("")
async def list_runs(
    svc: Svc,
    who: Who,
    environment: str | None = None,
    scenario: str | None = None,
    status: RunStatus | None = None,
    batch_id: str | None = None,
    model: Annotated[str | None, Query(description="The model as the run was started")] = None,
    taskset_id: str | None = None,
    tag: Annotated[str | None, Query(description="Runs that carry this tag")] = None,
    min_reward: float | None = None,
    max_reward: float | None = None,
    created_after: IsoDateTime | None = None,
    created_before: IsoDateTime | None = None,
    run_id_prefix: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> RunPage:
    """Runs, newest first."""
    listing = RunListing(
        environment=environment,
        scenario=scenario,
        status=status,
        batch_id=batch_id,
        model=model,
        taskset_id=taskset_id,
        tag=tag,
        min_reward=min_reward,
        max_reward=max_reward,
        created_after=created_after,
        created_before=created_before,
        run_id_prefix=run_id_prefix,
    )
    return await svc.runs.list_runs(who, listing, limit=limit, offset=offset)


@router.get("/{run_id}")
async def get_run(
    run_id: str,
    svc: Svc,
    who: Who,
    include_trajectory: bool = False,
    include_state: bool = False,
) -> RunView:
    """A run's status, reward, answer and usage; its events and final state on request."""
    return await svc.runs.get_run(
        who, run_id, include_trajectory=include_trajectory, include_state=include_state
    )


@router.patch("/{run_id}")
async def patch_run(run_id: str, patch: RunPatch, svc: Svc, who: Who) -> RunView:
    """Set stage, branch, output, client_state or error_message; `status` may only be set
    to `cancelled` (cancels the run) or `completed` (closes a session)."""
    return await svc.commands.patch_run(who, run_id, patch)


@router.put("/{run_id}/output")
async def set_output(run_id: str, svc: Svc, who: Who, output: Annotated[Any, Body()]) -> RunView:
    """Set the run's output (a PR URL, a commit SHA, any JSON value)."""
    return await svc.commands.patch_run(who, run_id, RunPatch(output=output))


@router.get("/{run_id}/events", responses={200: {"content": {"text/event-stream": {}}}})
async def list_events(
    run_id: str,
    request: Request,
    svc: Svc,
    who: StreamWho,
    after: AfterSeq = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    event_types_: Annotated[
        str | None,
        Query(alias="event_types", description=TYPES_HELP, json_schema_extra=TYPES_SCHEMA),
    ] = None,
    exclude_types: Annotated[
        str | None, Query(description=TYPES_HELP, json_schema_extra=TYPES_SCHEMA)
    ] = None,
    since: Annotated[IsoDateTime | None, Query(description="Only events recorded after")] = None,
    until: Annotated[IsoDateTime | None, Query(description="Only events recorded up to")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Any:
    """Events in sequence order. With `Accept: text/event-stream`, a live SSE stream that
    resumes after `Last-Event-ID` (or `after`) and ends when the run ends."""
    types = event_types(event_types_, exclude_types)
    if "text/event-stream" in request.headers.get("accept", ""):
        start = resume_point(last_event_id, after)
        return sse_response(native_frames(await svc.live.stream(who, run_id, start, types)))
    where = EventFilter(
        after=after,
        limit=limit,
        types=tuple(types.only),
        exclude_types=tuple(types.excluded),
        since=since,
        until=until,
    )
    events: list[EventView] = await svc.runs.events(who, run_id, where)
    return events


@router.post("/{run_id}/logs")
async def append_log(run_id: str, request: AppendLogRequest, svc: Svc, who: Who) -> AppendLogResult:
    """Append log entries from outside the run (a sandbox, a CI job); each becomes a `log`
    event. Entries with an `entry_id` already appended are skipped."""
    return await svc.commands.append_logs(who, run_id, request.entries)


@router.get(
    "/{run_id}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def download_logs(
    run_id: str,
    svc: Svc,
    who: Who,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
) -> StreamingResponse:
    """The run's log events as JSON Lines, oldest first."""
    events = await svc.runs.log_events(who, run_id, EventFilter(since=since, until=until))
    headers = {"Content-Disposition": f'attachment; filename="{run_id}.logs.jsonl"'}
    return StreamingResponse(json_lines(events), media_type="application/x-ndjson", headers=headers)


async def json_lines(events: AsyncIterator[EventView]) -> AsyncIterator[str]:
    async for event in events:
        yield event.model_dump_json() + "\n"
