"""The hud dialect: run a scenario (`/agent/run`), read traces back, check many at once,
list environments with their scenarios' ids, upload tasks to tasksets (evalsets) and read
jobs. Served under `/hud` and, every endpoint alike, under `/hud/v1`.

A trace is a Loopline run, an evalset a taskset and a job a batch (or a taskset's job, or a
run's own when it asks for one with `skip_job: false`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.http.deps import Svc, Who
from api.http.routing import DocumentedRoute
from api.services.environments import ScenarioRef, scenario_id
from api.services.model_names import MODEL_NAME_PATTERN, qualified_model
from loopline.models import (
    MAX_STEPS_LIMIT,
    AgentConfig,
    CallbackConfig,
    EnvironmentInfo,
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
# Every endpoint, served under PREFIX and under PREFIX/v1 (the guides write both).
routes = APIRouter(tags=["dialect: hud"], route_class=DocumentedRoute)

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
# Where a run started here keeps what hud's client sent that Loopline says otherwise (the
# model as named, before it is given its provider), to answer with it.
META_KEY = "hud"
# A trace's parts that are left out, not null, unless asked for.
TRACE_PARTS = ("trajectory", "logs", "rollout_logs")


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
    skip_job: bool | None = Field(
        default=None,
        description="false: the run belongs to a job (the evalset's, else one of its own) "
        "whose data /telemetry/job/{job_id} reads; true: to none. Unset: to the evalset's "
        "job if there is an evalset.",
    )


class AgentRunResponse(BaseModel):
    trace_id: str
    trace_url: str | None
    status: str
    job_id: str | None = None
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


class HudScenario(BaseModel):
    id: str = Field(description="The scenario's id, for a task's scenario_id.")
    name: str
    description: str
    args_schema: dict[str, Any]


class HudEnvironment(BaseModel):
    name: str
    description: str
    scenarios: list[HudScenario]
    tools: list[str]


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
        default=None,
        description="The scenario's id (GET /environments), or 'environment/scenario'.",
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
        metadata={META_KEY: {"model": body.model}},
    )
    job = None if body.skip_job is None else not body.skip_job
    view, _ = await svc.runs.start_as_task(who, request, job=job)
    if not body.sync:
        return AgentRunResponse.model_construct(
            trace_id=view.run_id, trace_url=view.temporal_ui_url, status="running"
        )
    answer = AgentRunResponse(
        trace_id=view.run_id,
        trace_url=view.temporal_ui_url,
        status=STATUS[view.status],
        reward=view.reward,
        success=view.success,
        response=view.answer,
        error=view.error,
    )
    if view.batch_id is not None:
        answer.job_id = view.batch_id
    return answer


routes.post("/agent/run", response_model_exclude_unset=True)(run_scenario)


# --- traces ---------------------------------------------------------------------------------


@routes.get("/telemetry/traces/{run_id}", response_model=Trace)
async def get_trace(
    run_id: str,
    svc: Svc,
    who: Who,
    include_trajectory: bool = False,
    include_logs: bool = False,
    include_rollout_logs: bool = False,
) -> JSONResponse:
    """Reward, status and scenario config; the trajectory and logs on request (absent
    otherwise)."""
    wanted = include_trajectory or include_logs or include_rollout_logs
    view = await svc.runs.get_run(who, run_id, include_trajectory=wanted)
    asked = {
        "trajectory": include_trajectory,
        "logs": include_logs,
        "rollout_logs": include_rollout_logs,
    }
    parts = trace_parts(view.trajectory or [])
    trace = trace_of(view).model_copy(update={name: parts[name] for name in asked if asked[name]})
    unasked = {name for name in TRACE_PARTS if not asked[name]}
    return JSONResponse(trace.model_dump(mode="json", exclude=unasked))


@routes.get("/telemetry/trace/{run_id}")
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


@routes.post("/telemetry/traces/status")
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
        model=sent_model(view),
        max_steps=view.max_steps,
        steps=view.steps,
        job_id=view.batch_id,
        evalset_id=view.taskset_id,
        usage=view.usage,
        created_at=view.created_at,
        ended_at=view.ended_at,
    )


def sent_model(view: RunView) -> str:
    """The model as the client named it, if it started the run here; else Loopline's name."""
    meta = view.metadata.get(META_KEY)
    model = meta.get("model") if isinstance(meta, dict) else None
    return model if isinstance(model, str) else view.model


def own_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """A run's metadata without what this dialect keeps in it for itself."""
    return {key: value for key, value in metadata.items() if key != META_KEY}


# --- environments ---------------------------------------------------------------------------


@routes.get("/environments")
async def list_environments(svc: Svc, who: Who) -> list[HudEnvironment]:
    """The environments with their scenarios, each with the id a task's scenario_id takes."""
    return [hud_environment(info) for info in await svc.environments.list(who)]


@routes.get("/environments/{env_name}")
async def get_environment(env_name: str, svc: Svc, who: Who) -> HudEnvironment:
    return hud_environment(await svc.environments.get(who, env_name))


def hud_environment(info: EnvironmentInfo) -> HudEnvironment:
    return HudEnvironment(
        name=info.name,
        description=info.description,
        scenarios=[
            HudScenario(
                id=scenario_id(info.name, scenario.name),
                name=scenario.name,
                description=scenario.description,
                args_schema=scenario.args_schema,
            )
            for scenario in info.scenarios
        ],
        tools=[tool.name for tool in info.tools],
    )


# --- tasks ----------------------------------------------------------------------------------


@routes.post("/tasks/upload")
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


@routes.post("/tasks/evalsets/{evalset_id}/tasks")
async def add_evalset_tasks(
    evalset_id: str, body: EvalsetTasks, svc: Svc, who: Who
) -> TaskUploadResult:
    """Add tasks in hud's internal format to an existing taskset, by its id."""
    evalset = await svc.tasksets.get(who, evalset_id)
    tasks = []
    for index, task in enumerate(body.tasks):
        loc: list[str | int] = ["body", "tasks", index, "scenario_id"]
        named = await svc.environments.scenario(who, task.scenario_id or "", loc)
        tasks.append(evalset_task(task, named))
    return await upload_tasks(TasksetUpload(name=evalset.name, tasks=tasks), svc, who)


def evalset_task(task: EvalsetTask, named: ScenarioRef) -> TaskDefinition:
    environment, scenario = named.environment, named.scenario
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


@routes.get("/telemetry/job/{batch_id}")
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
                metadata=own_metadata(run.metadata),
            )
            for run in runs
        ],
    )


@routes.get("/telemetry/job/{batch_id}/trace-ids")
async def job_trace_ids(batch_id: str, svc: Svc, who: Who) -> JobTraceIds:
    """Every trace id of a job, in the order its runs start."""
    batch = await svc.batches.get_batch(who, batch_id, include_runs=True)
    return JobTraceIds(job_id=batch_id, trace_ids=batch.run_ids or [])


router = APIRouter(prefix=PREFIX)
router.include_router(routes)
versioned = APIRouter(prefix=f"{PREFIX}/v1")
versioned.include_router(routes)
