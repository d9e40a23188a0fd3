"""The hud dialect: run a scenario (`/agent/run`, also under `/v1`), read traces back, check
many at once, upload tasks to tasksets (evalsets) and read jobs. Served under `/hud`.

A trace is a Loopline run, an evalset a taskset and a job a batch (or a taskset's job).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.http.deps import Svc, Who
from api.http.routing import DocumentedRoute
from api.services.errors import Invalid
from api.services.model_names import MODEL_NAME_PATTERN, qualified_model
from loopline.models import (
    MAX_STEPS_LIMIT,
    AgentConfig,
    CallbackConfig,
    EventType,
    EventView,
    RunRequest,
    RunStatus,
    RunView,
    TaskDefinition,
    TaskEnvironment,
    TasksetUpload,
    Usage,
)

PREFIX = "/hud"
router = APIRouter(prefix=PREFIX, tags=["dialect: hud"], route_class=DocumentedRoute)
# The scenario-as-an-endpoint guide calls the same endpoint under /v1.
versioned = APIRouter(prefix=f"{PREFIX}/v1", tags=["dialect: hud"], route_class=DocumentedRoute)

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
    model: str = Field(
        min_length=1,
        description="e.g. gpt-4o, claude-sonnet-4-20250514, custom/llama-3.",
        # Documented only: qualified_model's refusal says what to write instead.
        json_schema_extra={"pattern": MODEL_NAME_PATTERN},
    )
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


async def run_scenario(body: AgentRunRequest, svc: Svc, who: Who) -> AgentRunResponse:
    """Run a scenario; with `sync` (the default) wait up to `timeout` seconds for it. With
    `evalset_id` the scenario becomes a task of that taskset, and the run joins its job."""
    request = RunRequest(
        environment=body.env_name,
        scenario=body.scenario_name,
        args=body.scenario_args,
        model=qualified_model(body.model),
        max_steps=body.max_steps,
        sync=body.sync,
        timeout=body.timeout,
        callback=body.callback,
        taskset=body.evalset_id,
    )
    view, _ = await svc.runs.start_as_task(who, request)
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


for _router in (router, versioned):
    _router.post("/agent/run", response_model_exclude_unset=True)(run_scenario)


# --- traces ---------------------------------------------------------------------------------


@router.get("/telemetry/traces/{run_id}")
async def get_trace(
    run_id: str,
    svc: Svc,
    who: Who,
    include_trajectory: bool = False,
    include_logs: bool = False,
    include_rollout_logs: bool = False,
) -> Trace:
    """Reward, status and scenario config; the trajectory and logs on request."""
    wanted = include_trajectory or include_logs or include_rollout_logs
    view = await svc.runs.get_run(who, run_id, include_trajectory=wanted)
    asked = {
        "trajectory": include_trajectory,
        "logs": include_logs,
        "rollout_logs": include_rollout_logs,
    }
    parts = trace_parts(view.trajectory or [])
    return trace_of(view).model_copy(update={name: parts[name] for name in asked if asked[name]})


@router.get("/telemetry/trace/{run_id}")
async def get_full_trace(run_id: str, request: Request, svc: Svc, who: Who) -> FullTrace:
    """The whole trace: every trajectory step, logs, and signed links to its files
    (images among them as `screenshots`)."""
    view = await svc.runs.get_run(who, run_id, include_trajectory=True)
    links = [
        ArtifactLink(name=link.name, content_type=link.content_type, url=link.url)
        for link in await svc.artifacts.links(who, run_id, str(request.base_url))
    ]
    parts = trace_parts(view.trajectory or [])
    return FullTrace(
        **trace_of(view).model_dump(exclude=set(parts)),
        **parts,
        screenshots=[link for link in links if link.content_type.startswith("image/")],
        artifacts=links,
    )


def trace_parts(events: list[EventView]) -> dict[str, Any]:
    """A run's events as a trace's trajectory (its messages), environment logs (its log
    events) and rollout logs (everything else: status, reward, evaluation, callback)."""
    return {
        "trajectory": [e.data for e in events if e.type in TRAJECTORY_TYPES],
        "logs": [e for e in events if e.type is EventType.log],
        "rollout_logs": [e for e in events if e.type not in TRAJECTORY_TYPES | {EventType.log}],
    }


@router.post("/telemetry/traces/status")
async def trace_statuses(body: TraceStatusRequest, svc: Svc, who: Who) -> TraceStatuses:
    """The status and reward of many traces in one request, for light polling."""
    found = await svc.runs.statuses(who, body.trace_ids)
    return TraceStatuses(
        traces=[
            TraceStatus(trace_id=trace_id, status=STATUS[view.status], reward=view.reward)
            if (view := found.get(trace_id)) is not None
            else TraceStatus(trace_id=trace_id, status="not_found")
            for trace_id in body.trace_ids
        ]
    )


def trace_of(view: RunView) -> Trace:
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
async def upload_tasks(upload: TasksetUpload, svc: Svc, who: Who) -> TaskUploadResult:
    """Create or update tasks in a taskset (created if it does not exist); a task whose
    slug exists in the taskset is updated, not duplicated."""
    result = await svc.tasksets.upload(who, upload)
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
    evalset_id: str, body: EvalsetTasks, svc: Svc, who: Who
) -> TaskUploadResult:
    """Add tasks in hud's internal format to an existing taskset, by its id."""
    evalset = await svc.tasksets.get(who, evalset_id)
    tasks = [evalset_task(task, index) for index, task in enumerate(body.tasks)]
    return await upload_tasks(TasksetUpload(name=evalset.name, tasks=tasks), svc, who)


def evalset_task(task: EvalsetTask, index: int) -> TaskDefinition:
    loc: list[str | int] = ["body", "tasks", index, "scenario_id"]
    if task.scenario_id is None:
        raise Invalid(loc, "scenario_id is required: give the scenario as 'environment/scenario'")
    environment, _, scenario = task.scenario_id.replace(":", "/").partition("/")
    if not environment or not scenario:
        raise Invalid(loc, f"scenario_id {task.scenario_id!r} must be 'environment/scenario'")
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


@router.get("/telemetry/job/{batch_id}")
async def job_telemetry(batch_id: str, svc: Svc, who: Who) -> JobTelemetry:
    """A job's metrics and every one of its runs with reward, timing and metadata."""
    batch = await svc.batches.get_batch(who, batch_id, include_runs=False)
    runs = await svc.batches.all_runs(who, batch_id)
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


@router.get("/telemetry/job/{batch_id}/trace-ids")
async def job_trace_ids(batch_id: str, svc: Svc, who: Who) -> JobTraceIds:
    """Every trace id of a job, in the order its runs start."""
    batch = await svc.batches.get_batch(who, batch_id, include_runs=True)
    return JobTraceIds(job_id=batch_id, trace_ids=batch.run_ids or [])
