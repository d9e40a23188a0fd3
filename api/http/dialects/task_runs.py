"""The task-runs dialect: runs of a project's tasks, what callers attach to them (log,
artifacts, output, state), the commands they send and how they watch them. Served under
`/task-runs`, at the seed's own paths (`/task-runs/api/projects/...`).

`project_id` is the key's project; `task_id` names a taskset's task as `taskset:slug`, or by
its slug alone when one taskset has it. A task run is a Loopline run and its `state` the
run's `client_state`. Invalid input and refused commands answer 400, as the seed says.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, SecretStr

from api.http.deps import AfterSeq, Offset, StreamWho, Svc, Who
from api.http.dialects._common import BadRequestRoute
from api.http.routes.commands import JsonRpcCommand, run_command
from api.http.routes.runs import json_lines
from api.http.sse import native_frames, parse_event_types, resume_point, sse_response
from api.services import Services
from api.services.access import Caller, Need
from api.services.live import EventTypes
from api.services.runs import CallerFields
from api.services.task_runs import TaskPath
from loopline.models import (
    MAX_MESSAGE_CHARS,
    MAX_STEPS_LIMIT,
    ArtifactBatch,
    ArtifactInfo,
    ClientState,
    ClientTool,
    ConnectionToken,
    EventFilter,
    EventType,
    EventView,
    IsoDateTime,
    LogEntry,
    ModelConfig,
    Output,
    Provider,
    RelayAck,
    RunPatch,
    RunStatus,
    RunView,
    Script,
    SettableStatus,
    SignedURL,
    ToolCall,
    Usage,
)

RUNS = "/api/projects/{project_id}/tasks/{task_id}/runs"
RUN = RUNS + "/{run_id}"
router = APIRouter(prefix="/task-runs", tags=["dialect: task-runs"], route_class=BadRequestRoute)
LOG_LIMIT = 1000


class TaskRun(BaseModel):
    id: str
    project_id: str
    task_id: str
    status: RunStatus
    branch: str | None
    stage: str | None
    output: Any
    state: dict[str, Any] | None
    error_message: str | None
    error: str | None
    reward: float | None
    answer: str | None
    steps: int
    usage: Usage
    session: bool
    pending_tool_calls: list[ToolCall] | None
    temporal_ui_url: str | None
    created_at: datetime
    completed_at: datetime | None
    log: list[dict[str, Any]] | None = None
    artifacts: list[ArtifactInfo] | None = None


class TaskRunPage(BaseModel):
    count: int
    limit: int
    offset: int
    results: list[TaskRun]


class CreateTaskRun(BaseModel):
    """Optional: how to run the task. Loopline needs at least the model that plays it."""

    model: str | ModelConfig | None = Field(
        default=None, description="'provider/model', 'scripted' or a full model config."
    )
    provider_api_keys: dict[Provider, SecretStr] = Field(default_factory=dict)
    script: Script | None = None
    session: bool = False
    client_tools: list[ClientTool] = Field(default_factory=list)
    max_steps: int = Field(default=100, ge=1, le=MAX_STEPS_LIMIT)
    branch: str | None = Field(default=None, max_length=200)
    stage: str | None = Field(default=None, max_length=200)
    state: ClientState = None


class UpdateTaskRun(BaseModel):
    status: SettableStatus | None = None
    branch: str | None = Field(default=None, max_length=200)
    stage: str | None = Field(default=None, max_length=200)
    output: Output = None
    state: ClientState = None
    error_message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class AppendLog(BaseModel):
    entries: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


class SetOutput(BaseModel):
    output: Output


class PresignArtifact(BaseModel):
    storage_path: str = Field(min_length=1)


class RelayRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    message_id: str | None = Field(default=None, max_length=200)


@router.get(RUNS)
async def list_task_runs(
    project_id: str,
    task_id: str,
    svc: Svc,
    who: Who,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    offset: Offset = 0,
) -> TaskRunPage:
    """The task's runs, newest first."""
    path = TaskPath(project_id, task_id)
    page = await svc.task_runs.list(who, path, limit=limit, offset=offset)
    return TaskRunPage(
        count=page.total,
        limit=limit,
        offset=offset,
        results=[task_run(view, task_id) for view in page.runs],
    )


@router.post(RUNS, status_code=status.HTTP_201_CREATED)
async def create_task_run(
    project_id: str,
    task_id: str,
    svc: Svc,
    who: Who,
    body: Annotated[CreateTaskRun | None, Body()] = None,
) -> TaskRun:
    """Start a run of the task; `branch`, `stage` and `state` are set as it starts."""
    body = body or CreateTaskRun()
    options = body.model_dump(exclude={"branch", "stage", "state"}, exclude_none=True)
    options["provider_api_keys"] = body.provider_api_keys
    if body.model is not None:
        options["model"] = body.model
    fields = {"branch": body.branch, "stage": body.stage, "client_state": body.state}
    view = await svc.task_runs.create(
        who, TaskPath(project_id, task_id), options, CallerFields(fields)
    )
    return task_run(view, task_id)


@router.get(RUN)
async def retrieve_task_run(
    project_id: str, task_id: str, run_id: str, svc: Svc, who: Who
) -> TaskRun:
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.read)
    return await _full(svc, who, run_id, task_id)


@router.patch(RUN)
async def update_task_run(
    project_id: str, task_id: str, run_id: str, body: UpdateTaskRun, svc: Svc, who: Who
) -> TaskRun:
    """Set status (only `cancelled`, or `completed` to close a session), branch, stage,
    output, state or error_message."""
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.write)
    fields = body.model_dump(exclude_unset=True)
    if "state" in fields:
        fields["client_state"] = fields.pop("state")
    await svc.commands.patch_run(who, run_id, RunPatch.model_validate(fields))
    return await _full(svc, who, run_id, task_id)


@router.post(f"{RUN}/append_log")
async def append_log(
    project_id: str, task_id: str, run_id: str, body: AppendLog, svc: Svc, who: Who
) -> TaskRun:
    """Append entries to the run's log; an entry's `message` (or the entry itself, as JSON)
    is the line, its other fields are kept with it."""
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.commands)
    await svc.commands.append_logs(who, run_id, [log_entry(entry) for entry in body.entries])
    return await _seen_by(svc, who, run_id, task_id)


@router.post(f"{RUN}/artifacts")
async def upload_artifacts(
    project_id: str, task_id: str, run_id: str, body: ArtifactBatch, svc: Svc, who: Who
) -> TaskRun:
    """Store files (base64) with the run and add them to its manifest."""
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.write)
    await svc.artifacts.upload_batch(who, run_id, body)
    return await _full(svc, who, run_id, task_id)


@router.post(f"{RUN}/artifacts/presign")
async def presign_artifact(
    project_id: str,
    task_id: str,
    run_id: str,
    body: PresignArtifact,
    request: Request,
    svc: Svc,
    who: Who,
) -> SignedURL:
    """A temporary download URL for the artifact at `storage_path` (or of that name)."""
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.read)
    return await svc.artifacts.presign_stored(who, run_id, body.storage_path, str(request.base_url))


@router.post(f"{RUN}/command")
async def command(
    project_id: str, task_id: str, run_id: str, body: JsonRpcCommand, svc: Svc, who: Who
) -> JSONResponse:
    """JSON-RPC 2.0 `user_message` {content, message_id?}, `cancel` {reason?} or `close`
    {reason?}; 400 when the run cannot take it, 502 when its workflow cannot be reached."""
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.commands)
    return await run_command(svc, who, run_id, body, refused_status=400, unreachable_status=502)


@router.get(f"{RUN}/connection_token")
async def connection_token(
    project_id: str, task_id: str, run_id: str, svc: Svc, who: Who
) -> ConnectionToken:
    """A JWT, valid 24 hours, for this run's stream and logs, and (from a key that may
    write) its commands; nothing else."""
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.events)
    return await svc.access.connection_token(who, run_id)


@router.get(
    f"{RUN}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def logs(project_id: str, task_id: str, run_id: str, svc: Svc, who: Who) -> StreamingResponse:
    """The run's log as JSON Lines, oldest first."""
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.events)
    events = await svc.runs.log_events(who, run_id, EventFilter())
    return StreamingResponse(json_lines(events), media_type="application/x-ndjson")


@router.post(f"{RUN}/relay_message")
async def relay_message(
    project_id: str, task_id: str, run_id: str, body: RelayRequest, svc: Svc, who: Who
) -> RelayAck:
    """Queue `text` for the project's relay webhook (LOOPLINE_RELAY_WEBHOOKS); 400 when the
    project has none."""
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.write)
    return await svc.commands.relay_message(who, run_id, body.text, body.message_id)


@router.get(f"{RUN}/session_logs")
async def session_logs(
    project_id: str,
    task_id: str,
    run_id: str,
    svc: Svc,
    who: Who,
    after: IsoDateTime | None = None,
    event_types: str | None = None,
    exclude_types: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[EventView]:
    """The run's events after a time, of some types (comma-separated) or not of others."""
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.events)
    where = EventFilter(
        limit=limit,
        types=tuple(parse_event_types(event_types, "event_types")),
        exclude_types=tuple(parse_event_types(exclude_types, "exclude_types")),
        since=after,
    )
    return await svc.runs.events(who, run_id, where)


@router.patch(f"{RUN}/set_output")
async def set_output(
    project_id: str, task_id: str, run_id: str, body: SetOutput, svc: Svc, who: Who
) -> TaskRun:
    """Set the run's output (a PR URL, a commit SHA, any JSON value)."""
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.write)
    await svc.commands.patch_run(who, run_id, RunPatch(output=body.output))
    return await _full(svc, who, run_id, task_id)


@router.get(f"{RUN}/stream", responses={200: {"content": {"text/event-stream": {}}}})
async def stream(
    project_id: str,
    task_id: str,
    run_id: str,
    svc: Svc,
    who: StreamWho,
    after: AfterSeq = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The run's events as a live SSE stream that resumes after `Last-Event-ID` (or
    `after`) and ends when the run ends."""
    await svc.task_runs.run(who, TaskPath(project_id, task_id), run_id, Need.events)
    start = resume_point(last_event_id, after)
    items = await svc.live.stream(who, run_id, start, EventTypes())
    return sse_response(native_frames(items))


async def _full(svc: Services, who: Caller, run_id: str, task_id: str) -> TaskRun:
    """The run with its log and artifact manifest."""
    run = await _seen_by(svc, who, run_id, task_id)
    run.artifacts = await svc.artifacts.manifest(who, run_id)
    return run


async def _seen_by(svc: Services, who: Caller, run_id: str, task_id: str) -> TaskRun:
    """The run with its log, as much of it as the caller (a key or a token) may read."""
    log = await svc.runs.events(who, run_id, EventFilter(limit=LOG_LIMIT, types=(EventType.log,)))
    run = task_run(await svc.runs.watch_run(who, run_id), task_id)
    run.log = [event.data for event in log]
    return run


def task_run(view: RunView, task_id: str) -> TaskRun:
    return TaskRun(
        id=view.run_id,
        project_id=view.project,
        task_id=task_id,
        status=view.status,
        branch=view.branch,
        stage=view.stage,
        output=view.output,
        state=view.client_state,
        error_message=view.error_message,
        error=view.error,
        reward=view.reward,
        answer=view.answer,
        steps=view.steps,
        usage=view.usage,
        session=view.session,
        pending_tool_calls=view.pending_tool_calls,
        temporal_ui_url=view.temporal_ui_url,
        created_at=view.created_at,
        completed_at=view.ended_at,
    )


def log_entry(entry: dict[str, Any]) -> LogEntry:
    fields = {k: entry[k] for k in ("entry_id", "level", "source", "timestamp") if k in entry}
    message = entry.get("message")
    rest = {k: v for k, v in entry.items() if k not in {*fields, "message"}}
    line = message if isinstance(message, str) else json.dumps(entry, default=str)
    return LogEntry.model_validate({**fields, "message": line, "data": rest})
