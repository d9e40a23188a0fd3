"""The hud dialect: run a scenario (`/agent/run`, also under `/v1`), read traces back, check
many at once, upload tasks to tasksets (evalsets) and read jobs. Served under `/hud`.

A trace is a Loopline run, an evalset a taskset and a job a batch (or a taskset's job).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.access import BatchRead, ReadProject, RunRead, WriteProject
from api.deps import Artifacts, Batches, Service, Tasksets
from api.dialects._common import all_runs, native_model
from api.errors import InvalidRequestError
from loopline.models import (
    MAX_STEPS_LIMIT,
    AgentConfig,
    CallbackConfig,
    EventType,
    EventView,
    PresignRequest,
    RunRequest,
    RunStatus,
    RunView,
    TaskDefinition,
    TaskEnvironment,
    TasksetUpload,
    Usage,
)
from loopline.store import RunNotFoundError

PREFIX = "/hud"
router = APIRouter(prefix=PREFIX, tags=["dialect: hud"])
# The scenario-as-an-endpoint guide calls the same endpoint under /v1.
versioned = APIRouter(prefix=f"{PREFIX}/v1", tags=["dialect: hud"])

# hud's trace statuses: a run waiting for its caller is still running.
STATUS = {
    RunStatus.pending: "running",
    RunStatus.running: "running",
    RunStatus.awaiting_input: "running",
    RunStatus.idle: "running",
    RunStatus.completed: "completed",
    RunStatus.failed: "error",
    RunStatus.cancelled: "cancelled",
}
TRAJECTORY_TYPES = frozenset({EventType.message, EventType.summary})
MAX_STATUS_IDS = 1000


class AgentRunRequest(BaseModel):
    env_name: str = Field(min_length=1, description="Environment name.")
    scenario_name: str = Field(min_length=1, description="Scenario to run.")
    scenario_args: dict[str, Any] = Field(default_factory=dict)
    model: str = Field(min_length=1, description="e.g. gpt-4o, claude-sonnet-4-20250514.")
    max_steps: int = Field(default=100, ge=1, le=MAX_STEPS_LIMIT)
    sync: bool = Field(default=True, description="Wait for the result, up to `timeout`.")
    timeout: int = Field(default=300, ge=30, le=600, description="Seconds to wait when sync.")
    evalset_id: str | None = Field(default=None, description="A taskset to add the task to.")
    callback: CallbackConfig | None = None


class AgentRunResponse(BaseModel):
    trace_id: str
    trace_url: str | None
    status: str
    reward: float | None = None
    success: bool | None = None
    response: str | None = None
    error: str | None = None


class ScenarioConfig(BaseModel):
    env_name: str
    scenario_name: str
    scenario_args: dict[str, Any]


class Trace(BaseModel):
    trace_id: str
    trace_url: str | None
    status: str
    reward: float | None
    success: bool | None
    response: str | None
    error: str | None
    scenario: ScenarioConfig
    model: str
    max_steps: int
    steps: int
    job_id: str | None
    evalset_id: str | None
    usage: Usage
    created_at: datetime
    ended_at: datetime | None
    trajectory: list[dict[str, Any]] | None = None
    logs: list[EventView] | None = None
    rollout_logs: list[EventView] | None = None


class ArtifactLink(BaseModel):
    name: str
    content_type: str
    url: str


class FullTrace(Trace):
    screenshots: list[ArtifactLink]
    artifacts: list[ArtifactLink]


class TraceStatusRequest(BaseModel):
    trace_ids: list[str] = Field(min_length=1, max_length=MAX_STATUS_IDS)


class TraceStatus(BaseModel):
    trace_id: str
    status: str = Field(description="'not_found' for an id this key cannot see.")
    reward: float | None = None


class TraceStatuses(BaseModel):
    traces: list[TraceStatus]


class TaskUploadResult(BaseModel):
    evalset_id: str
    name: str
    version: int
    created: list[str]
    updated: list[str]
    unchanged: list[str]


class ScenarioArg(BaseModel):
    name: str
    value: Any


class EnvConfig(BaseModel):
    include: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)


class EvalsetTask(BaseModel):
    prompt: str | None = None
    tier: int | None = None
    scenario_id: str | None = Field(
        default=None, description="'environment/scenario' (or 'environment:scenario')."
    )
    scenario_args: list[ScenarioArg] | None = None
    external_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    env_config: EnvConfig | None = None
    agent_config: AgentConfig | None = None
    metadata: dict[str, Any] | None = None


class EvalsetTasks(BaseModel):
    tasks: list[EvalsetTask] = Field(min_length=1)


class JobMetrics(BaseModel):
    total: int
    pending: int
    running: int
    completed: int
    failed: int
    cancelled: int
    mean_reward: float | None
    success_rate: float | None
    pass_at_k: dict[int, float]


class JobRun(BaseModel):
    trace_id: str
    task_id: str | None
    rollout: int | None
    status: str
    reward: float | None
    success: bool | None
    created_at: datetime
    ended_at: datetime | None
    duration_seconds: float | None
    metadata: dict[str, Any]


class JobTelemetry(BaseModel):
    job_id: str
    name: str | None
    status: str
    evalset_id: str | None
    model: str | None
    created_at: datetime
    ended_at: datetime | None
    metrics: JobMetrics
    usage: Usage
    metadata: dict[str, Any]
    runs: list[JobRun]


class JobTraceIds(BaseModel):
    job_id: str
    trace_ids: list[str]


# --- running --------------------------------------------------------------------------------


async def run_scenario(
    body: AgentRunRequest, service: Service, tasksets: Tasksets, project: WriteProject
) -> AgentRunResponse:
    """Run a scenario; with `sync` (the default) wait up to `timeout` seconds for it."""
    request = RunRequest(
        environment=body.env_name,
        scenario=body.scenario_name,
        args=body.scenario_args,
        model=native_model(body.model),
        max_steps=body.max_steps,
        sync=body.sync,
        timeout=body.timeout,
        callback=body.callback,
        taskset=body.evalset_id,
    )
    task = await _add_to_evalset(body, tasksets, project) if body.evalset_id else None
    view, _ = await service.start_run(request, project, task=task)
    if not body.sync:
        return AgentRunResponse.model_construct(
            trace_id=view.run_id, trace_url=view.temporal_ui_url, status="running"
        )
    return AgentRunResponse(
        trace_id=view.run_id,
        trace_url=view.temporal_ui_url,
        status=STATUS[view.status],
        reward=view.reward,
        success=view.success,
        response=view.answer,
        error=view.error,
    )


async def _add_to_evalset(body: AgentRunRequest, tasksets: Tasksets, project: str) -> str:
    """The run's task in the evalset, named by its content so a repeat finds it again."""
    evalset = await tasksets.get(body.evalset_id or "", project)
    content = json.dumps([body.env_name, body.scenario_name, body.scenario_args], sort_keys=True)
    slug = f"run-{hashlib.sha256(content.encode()).hexdigest()[:16]}"
    task = TaskDefinition(
        slug=slug,
        scenario=body.scenario_name,
        args=body.scenario_args,
        env=TaskEnvironment(name=body.env_name),
    )
    await tasksets.upload(TasksetUpload(name=evalset.name, tasks=[task]), project)
    return slug


for _router in (router, versioned):
    _router.post("/agent/run", response_model_exclude_unset=True)(run_scenario)


# --- traces ---------------------------------------------------------------------------------


@router.get("/telemetry/traces/{run_id}", dependencies=[RunRead])
async def get_trace(
    run_id: str,
    service: Service,
    include_trajectory: bool = False,
    include_logs: bool = False,
    include_rollout_logs: bool = False,
) -> Trace:
    """Reward, status and scenario config; the trajectory and logs on request."""
    wanted = include_trajectory or include_logs or include_rollout_logs
    view = await service.get_run(run_id, include_trajectory=wanted)
    asked = {
        "trajectory": include_trajectory,
        "logs": include_logs,
        "rollout_logs": include_rollout_logs,
    }
    parts = _parts(view.trajectory or [])
    return _trace(view).model_copy(update={name: parts[name] for name in asked if asked[name]})


@router.get("/telemetry/trace/{run_id}", dependencies=[RunRead])
async def get_full_trace(
    run_id: str, request: Request, service: Service, artifacts: Artifacts
) -> FullTrace:
    """The whole trace: every trajectory step, logs, and signed links to its files
    (images among them as `screenshots`)."""
    view = await service.get_run(run_id, include_trajectory=True)
    links = [
        ArtifactLink(
            name=artifact.name,
            content_type=artifact.content_type,
            url=(
                await artifacts.presign(
                    run_id, PresignRequest(name=artifact.name), str(request.base_url)
                )
            ).url,
        )
        for artifact in await artifacts.manifest(run_id)
    ]
    parts = _parts(view.trajectory or [])
    return FullTrace(
        **_trace(view).model_dump(exclude=set(parts)),
        **parts,
        screenshots=[link for link in links if link.content_type.startswith("image/")],
        artifacts=links,
    )


def _parts(events: list[EventView]) -> dict[str, Any]:
    """A run's events as a trace's trajectory (its messages), environment logs (its log
    events) and rollout logs (everything else: status, reward, evaluation, callback)."""
    return {
        "trajectory": [e.data for e in events if e.type in TRAJECTORY_TYPES],
        "logs": [e for e in events if e.type is EventType.log],
        "rollout_logs": [e for e in events if e.type not in TRAJECTORY_TYPES | {EventType.log}],
    }


@router.post("/telemetry/traces/status")
async def trace_statuses(
    body: TraceStatusRequest, service: Service, project: ReadProject
) -> TraceStatuses:
    """The status and reward of many traces in one request, for light polling."""
    found: list[TraceStatus] = []
    for trace_id in body.trace_ids:
        try:
            view = await service.get_run(trace_id)
        except RunNotFoundError:
            view = None
        if view is None or view.project != project:
            found.append(TraceStatus(trace_id=trace_id, status="not_found"))
        else:
            found.append(
                TraceStatus(trace_id=trace_id, status=STATUS[view.status], reward=view.reward)
            )
    return TraceStatuses(traces=found)


def _trace(view: RunView) -> Trace:
    return Trace(
        trace_id=view.run_id,
        trace_url=view.temporal_ui_url,
        status=STATUS[view.status],
        reward=view.reward,
        success=view.success,
        response=view.answer,
        error=view.error,
        scenario=ScenarioConfig(
            env_name=view.environment, scenario_name=view.scenario, scenario_args=view.args
        ),
        model=view.model,
        max_steps=view.max_steps,
        steps=view.steps,
        job_id=view.batch_id,
        evalset_id=view.taskset_id,
        usage=view.usage,
        created_at=view.created_at,
        ended_at=view.ended_at,
    )


# --- tasks ----------------------------------------------------------------------------------


@router.post("/tasks/upload")
async def upload_tasks(
    upload: TasksetUpload, tasksets: Tasksets, project: WriteProject
) -> TaskUploadResult:
    """Create or update tasks in a taskset (created if it does not exist); a task whose
    slug exists in the taskset is updated, not duplicated."""
    result = await tasksets.upload(upload, project)
    return TaskUploadResult(
        evalset_id=result.taskset_id,
        name=result.name,
        version=result.version,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
    )


@router.post("/tasks/evalsets/{evalset_id}/tasks")
async def add_evalset_tasks(
    evalset_id: str, body: EvalsetTasks, tasksets: Tasksets, project: WriteProject
) -> TaskUploadResult:
    """Add tasks in hud's internal format to an existing taskset, by its id."""
    evalset = await tasksets.get(evalset_id, project)
    tasks = [_task(task, index) for index, task in enumerate(body.tasks)]
    return await upload_tasks(TasksetUpload(name=evalset.name, tasks=tasks), tasksets, project)


def _task(task: EvalsetTask, index: int) -> TaskDefinition:
    loc: list[str | int] = ["body", "tasks", index, "scenario_id"]
    if task.scenario_id is None:
        raise InvalidRequestError(
            loc, "scenario_id is required: give the scenario as 'environment/scenario'"
        )
    environment, _, scenario = task.scenario_id.replace(":", "/").partition("/")
    if not environment or not scenario:
        raise InvalidRequestError(
            loc, f"scenario_id {task.scenario_id!r} must be 'environment/scenario'"
        )
    env = task.env_config or EnvConfig()
    metadata = {**(task.metadata or {}), **({"tier": task.tier} if task.tier is not None else {})}
    return TaskDefinition(
        slug=task.external_id,
        description=task.prompt,
        scenario=scenario,
        args={arg.name: arg.value for arg in task.scenario_args or []},
        env=TaskEnvironment(name=environment, include=env.include, exclude=env.exclude),
        agent_config=task.agent_config,
        tags=task.tags,
        metadata=metadata,
    )


# --- jobs -----------------------------------------------------------------------------------


@router.get("/telemetry/job/{batch_id}", dependencies=[BatchRead])
async def job_telemetry(batch_id: str, batches: Batches) -> JobTelemetry:
    """A job's metrics and every one of its runs with reward, timing and metadata."""
    batch = await batches.get_batch(batch_id, include_runs=False)
    runs = await all_runs(batch_id, batches)
    counts, scores = batch.counts, batch.scores
    return JobTelemetry(
        job_id=batch.batch_id,
        name=batch.name,
        status=batch.status.value,
        evalset_id=batch.taskset_id,
        model=batch.model,
        created_at=batch.created_at,
        ended_at=batch.ended_at,
        metrics=JobMetrics(
            **counts.model_dump(),
            mean_reward=scores.mean_reward,
            success_rate=scores.success_rate,
            pass_at_k=scores.pass_at_k,
        ),
        usage=batch.usage,
        metadata=batch.metadata,
        runs=[
            JobRun(
                trace_id=run.run_id,
                task_id=run.task,
                rollout=run.rollout,
                status=STATUS[run.status],
                reward=run.reward,
                success=run.success,
                created_at=run.created_at,
                ended_at=run.ended_at,
                duration_seconds=(
                    (run.ended_at - run.created_at).total_seconds() if run.ended_at else None
                ),
                metadata=run.metadata,
            )
            for run in runs
        ],
    )


@router.get("/telemetry/job/{batch_id}/trace-ids", dependencies=[BatchRead])
async def job_trace_ids(batch_id: str, batches: Batches) -> JobTraceIds:
    """Every trace id of a job, in the order its runs start."""
    batch = await batches.get_batch(batch_id, include_runs=True)
    return JobTraceIds(job_id=batch_id, trace_ids=batch.run_ids or [])
