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

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, SecretStr

from api.access import (
    ReadProject,
    RunOrTokenRead,
    RunOrTokenWrite,
    RunRead,
    RunWrite,
    SignerDep,
    WriteProject,
    get_gate,
)
from api.deps import AfterSeq, Artifacts, Live, Offset, Service
from api.dialects._common import BadRequestRoute
from api.errors import ArtifactNotFoundError, InvalidRequestError
from api.live import EventFilter
from api.routes import commands, runs
from api.routes.commands import JsonRpcCommand
from loopline.models import (
    MAX_MESSAGE_CHARS,
    MAX_STEPS_LIMIT,
    ArtifactBatch,
    ArtifactInfo,
    ClientTool,
    ConnectionToken,
    EventType,
    EventView,
    LogEntry,
    ModelConfig,
    PresignRequest,
    Provider,
    RelayAck,
    RunPatch,
    RunStatus,
    RunView,
    Script,
    SignedURL,
    ToolCall,
    Usage,
)
from loopline.store import RunNotFoundError

RUNS = "/api/projects/{project_id}/tasks/{task_id}/runs"
router = APIRouter(prefix="/task-runs", tags=["dialect: task-runs"], route_class=BadRequestRoute)
LOG_LIMIT = 1000


def _same(project_id: str, project: str) -> str:
    """The path's project must be the key's: another project is answered as not found."""
    if project_id != project:
        raise RunNotFoundError(f"no project {project_id!r} for this API key")
    return project


async def _readable(project_id: str, project: ReadProject) -> str:
    return _same(project_id, project)


async def _writable(project_id: str, project: WriteProject) -> str:
    return _same(project_id, project)


async def _of_run(project_id: str, request: Request) -> str:
    """Under one run, a connection token (checked by the route) stands for its project."""
    caller = await get_gate(request).caller(request, token_allowed=True)
    return project_id if caller.token_run is not None else _same(project_id, caller.project or "")


ReadableProject = Annotated[str, Depends(_readable)]
WritableProject = Annotated[str, Depends(_writable)]
Project = Annotated[str, Depends(_of_run)]


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
    state: dict[str, Any] | None = None


class UpdateTaskRun(BaseModel):
    status: RunStatus | None = None
    branch: str | None = Field(default=None, max_length=200)
    stage: str | None = Field(default=None, max_length=200)
    output: Any = None
    state: dict[str, Any] | None = None
    error_message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class AppendLog(BaseModel):
    entries: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


class SetOutput(BaseModel):
    output: Any


class PresignArtifact(BaseModel):
    storage_path: str = Field(min_length=1)


class RelayRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    message_id: str | None = Field(default=None, max_length=200)


@router.get(RUNS)
async def list_task_runs(
    task_id: str,
    project: ReadableProject,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    offset: Offset = 0,
) -> TaskRunPage:
    """The task's runs, newest first."""
    taskset, task = await service.find_task(task_id, project)
    page = await service.list_runs(
        project=project,
        environment=None,
        scenario=None,
        status=None,
        batch_id=None,
        limit=limit,
        offset=offset,
        task=(taskset.taskset_id, task.slug or ""),
    )
    return TaskRunPage(
        count=page.total,
        limit=limit,
        offset=offset,
        results=[_task_run(view, task_id) for view in page.runs],
    )


@router.post(RUNS, status_code=status.HTTP_201_CREATED)
async def create_task_run(
    task_id: str,
    project: WritableProject,
    service: Service,
    body: Annotated[CreateTaskRun | None, Body()] = None,
) -> TaskRun:
    """Start a run of the task."""
    body = body or CreateTaskRun()
    if body.model is None:
        raise InvalidRequestError(
            ["body", "model"],
            "say which model runs the task: 'provider/model' (e.g. 'openai/gpt-4o'), a model "
            "config, or 'scripted' with a script",
        )
    options = body.model_dump(exclude={"branch", "stage", "state"}, exclude_none=True)
    options["provider_api_keys"] = body.provider_api_keys
    options["model"] = body.model
    view, _ = await service.start_task_run(task_id, options, project)
    patch = RunPatch(branch=body.branch, stage=body.stage, client_state=body.state)
    if patch.model_dump(exclude_none=True):
        view = await service.patch_run(view.run_id, _only_set(patch))
    return _task_run(view, task_id)


@router.get(f"{RUNS}/{{run_id}}", dependencies=[RunRead])
async def retrieve_task_run(
    run_id: str, task_id: str, project: Project, service: Service, artifacts: Artifacts
) -> TaskRun:
    return await _full(run_id, task_id, service, artifacts)


@router.patch(f"{RUNS}/{{run_id}}", dependencies=[RunWrite])
async def update_task_run(
    run_id: str,
    task_id: str,
    project: Project,
    body: UpdateTaskRun,
    service: Service,
    artifacts: Artifacts,
) -> TaskRun:
    """Set status (only `cancelled`, or `completed` to close a session), branch, stage,
    output, state or error_message."""
    fields = body.model_dump(exclude_unset=True)
    if "state" in fields:
        fields["client_state"] = fields.pop("state")
    await service.patch_run(run_id, RunPatch.model_validate(fields))
    return await _full(run_id, task_id, service, artifacts)


@router.post(f"{RUNS}/{{run_id}}/append_log", dependencies=[RunOrTokenWrite])
async def append_log(
    run_id: str,
    task_id: str,
    project: Project,
    body: AppendLog,
    service: Service,
    artifacts: Artifacts,
) -> TaskRun:
    """Append entries to the run's log; an entry's `message` (or the entry itself, as JSON)
    is the line, its other fields are kept with it."""
    await service.append_logs(run_id, [_log_entry(entry) for entry in body.entries])
    return await _full(run_id, task_id, service, artifacts)


@router.post(f"{RUNS}/{{run_id}}/artifacts", dependencies=[RunWrite])
async def upload_artifacts(
    run_id: str,
    task_id: str,
    project: Project,
    body: ArtifactBatch,
    service: Service,
    artifacts: Artifacts,
) -> TaskRun:
    """Store files (base64) with the run and add them to its manifest."""
    await artifacts.upload_batch(run_id, body)
    return await _full(run_id, task_id, service, artifacts)


@router.post(f"{RUNS}/{{run_id}}/artifacts/presign", dependencies=[RunRead])
async def presign_artifact(
    run_id: str,
    task_id: str,
    project: Project,
    body: PresignArtifact,
    request: Request,
    artifacts: Artifacts,
) -> SignedURL:
    """A temporary download URL for the artifact at `storage_path` (or of that name)."""
    manifest = await artifacts.manifest(run_id)
    match = [a for a in manifest if body.storage_path in {a.storage_path, a.name}]
    if not match:
        raise ArtifactNotFoundError(f"run {run_id!r} has no artifact at {body.storage_path!r}")
    presign = PresignRequest(name=match[0].name)
    return await artifacts.presign(run_id, presign, str(request.base_url))


@router.post(f"{RUNS}/{{run_id}}/command", dependencies=[RunOrTokenWrite])
async def command(
    run_id: str, task_id: str, project: Project, body: JsonRpcCommand, service: Service
) -> JSONResponse:
    """JSON-RPC 2.0 `user_message` {content, message_id?}, `cancel` {reason?} or `close`
    {reason?}; 400 when the run cannot take it, 502 when its workflow cannot be reached."""
    return await commands.run_command(
        run_id, body, service, refused_status=400, unreachable_status=502
    )


@router.get(f"{RUNS}/{{run_id}}/connection_token", dependencies=[RunRead])
async def connection_token(
    run_id: str, task_id: str, project: Project, service: Service, signer: SignerDep
) -> ConnectionToken:
    """A JWT, valid 24 hours, for this run's stream, logs and commands only."""
    return await commands.connection_token(run_id, service, signer)


@router.get(
    f"{RUNS}/{{run_id}}/logs",
    dependencies=[RunRead],
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def logs(run_id: str, task_id: str, project: Project, service: Service) -> Response:
    """The run's log as JSON Lines, oldest first."""
    return await runs.download_logs(run_id, service)


@router.post(f"{RUNS}/{{run_id}}/relay_message", dependencies=[RunWrite])
async def relay_message(
    run_id: str, task_id: str, project: Project, body: RelayRequest, service: Service
) -> RelayAck:
    """Queue `text` for the project's relay webhook (LOOPLINE_RELAY_WEBHOOKS); 400 when the
    project has none."""
    return await service.relay_message(run_id, body.text, body.message_id)


@router.get(f"{RUNS}/{{run_id}}/session_logs", dependencies=[RunOrTokenRead])
async def session_logs(
    run_id: str,
    task_id: str,
    project: Project,
    service: Service,
    after: datetime | None = None,
    event_types: str | None = None,
    exclude_types: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[EventView]:
    """The run's events after a time, of some types (comma-separated) or not of others."""
    return await service.events(
        run_id,
        after=0,
        limit=limit,
        types=runs.parse_event_types(event_types, "event_types"),
        exclude_types=runs.parse_event_types(exclude_types, "exclude_types"),
        since=after,
    )


@router.patch(f"{RUNS}/{{run_id}}/set_output", dependencies=[RunWrite])
async def set_output(
    run_id: str,
    task_id: str,
    project: Project,
    body: SetOutput,
    service: Service,
    artifacts: Artifacts,
) -> TaskRun:
    """Set the run's output (a PR URL, a commit SHA, any JSON value)."""
    await service.patch_run(run_id, RunPatch(output=body.output))
    return await _full(run_id, task_id, service, artifacts)


@router.get(
    f"{RUNS}/{{run_id}}/stream",
    dependencies=[RunOrTokenRead],
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    run_id: str,
    task_id: str,
    project: Project,
    service: Service,
    live: Live,
    after: AfterSeq = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The run's events as a live SSE stream that resumes after `Last-Event-ID` (or
    `after`) and ends when the run ends."""
    await service.get_run(run_id)
    start = runs.resume_point(last_event_id, after)
    frames = live.stream(run_id, start, EventFilter(frozenset(), frozenset()))
    return StreamingResponse(frames, media_type="text/event-stream", headers=runs.SSE_HEADERS)


async def _full(run_id: str, task_id: str, service: Service, artifacts: Artifacts) -> TaskRun:
    view = await service.get_run(run_id)
    log = await service.events(run_id, after=0, limit=LOG_LIMIT, types=[EventType.log])
    run = _task_run(view, task_id)
    run.log = [event.data for event in log]
    run.artifacts = await artifacts.manifest(run_id)
    return run


def _task_run(view: RunView, task_id: str) -> TaskRun:
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


def _log_entry(entry: dict[str, Any]) -> LogEntry:
    fields = {k: entry[k] for k in ("entry_id", "level", "source", "timestamp") if k in entry}
    message = entry.get("message")
    rest = {k: v for k, v in entry.items() if k not in {*fields, "message"}}
    line = message if isinstance(message, str) else json.dumps(entry, default=str)
    return LogEntry.model_validate({**fields, "message": line, "data": rest})


def _only_set(patch: RunPatch) -> RunPatch:
    return RunPatch.model_validate(patch.model_dump(exclude_none=True))
