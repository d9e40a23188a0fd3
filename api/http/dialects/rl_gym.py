"""The rl-gym dialect: launch rollouts of a template's tasks, list runs, read, cancel and
delete them. Served under `/rl-gym`.

An rl-gym run is a Loopline batch, a rollout one of its runs, and a template (`scenario_id`)
a taskset whose task slugs are the `task_ids`, an environment whose scenarios they are, or
one scenario (api/services/templates.py). A model config with the documented defaults
(provider `custom`, no `base_url`) is the model of the provider its name says, at that
provider's default endpoint.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from api.http.deps import Offset, Svc, Who
from api.http.routing import DocumentedRoute
from api.services.batches import BatchListing
from api.services.errors import Conflict, Invalid
from api.services.model_names import default_endpoint
from loopline.models import (
    MAX_STEPS_LIMIT,
    BatchRequest,
    BatchView,
    CancelRequest,
    HttpUrlText,
    ModelConfig,
    Provider,
    RunStatus,
    TaskOverride,
)

router = APIRouter(prefix="/rl-gym", tags=["dialect: rl-gym"], route_class=DocumentedRoute)

SOURCE = "rl-gym"
SOURCES = ("rl-gym", "task-editor", "datadog-synthetics", "all")
# Where a batch request's fields come from in a launch request, for the fields it refuses.
LAUNCH_FIELDS: dict[str, list[str | int]] = {
    "model": ["model_config"],
    "user_model": ["user_model_config"],
    "max_steps": ["model_config", "max_steps"],
    "tasks": ["task_ids"],
    "task_slugs": ["task_ids"],
    "taskset": ["scenario_id"],
}


class GymModelConfig(BaseModel):
    """rl-gym's ModelConfig: its own defaults (temperature 0.7, 30 steps, a required key)."""

    model_config = ConfigDict(protected_namespaces=())

    model: str = Field(min_length=1, max_length=200)
    provider: Provider = Provider.custom
    api_key: SecretStr = Field(description="Used for this run only, never stored in clear.")
    base_url: HttpUrlText | None = None
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_steps: int = Field(default=30, ge=1, le=MAX_STEPS_LIMIT)
    system_prompt: str | None = Field(default=None, max_length=100_000)
    tool_server_url: HttpUrlText | None = None
    log_prob: bool = False
    summarize_every_n_turns: int = Field(default=0, ge=0, le=MAX_STEPS_LIMIT)
    context_stride: int = Field(default=3, ge=1)

    def native(self, loc: list[str | int]) -> ModelConfig:
        """As Loopline's model config; `loc` is where this one is in the request."""
        return default_endpoint(ModelConfig(**self.model_dump()), [*loc, "model"])


class LaunchRequest(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), populate_by_name=True)

    scenario_id: str = Field(min_length=1, description="The template: a taskset's name or id.")
    task_ids: list[str] = Field(min_length=1, description="Slugs of the template's tasks.")
    agent_model: GymModelConfig = Field(alias="model_config")
    rollout_count: int = Field(default=1, ge=1, le=1000)
    max_parallel: int | None = Field(default=None, ge=1, le=1000)
    run_name: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", description="Unique."
    )
    user_model_config: GymModelConfig | None = None
    task_overrides: dict[str, TaskOverride] = Field(default_factory=dict)


class RunStatusResponse(BaseModel):
    run_id: str
    scenario_id: str
    source: str
    total: int
    completed: int
    failed: int = Field(description="Failed and cancelled rollouts.")
    in_progress: int
    pending: int
    running: int
    rollout_ids: list[str]


class Rollout(BaseModel):
    rollout_id: str
    scenario_id: str
    task_id: str | None
    run_id: str
    status: str


class LaunchResponse(BaseModel):
    run_id: str
    run_status: RunStatusResponse
    rollouts: list[Rollout]


class RunList(BaseModel):
    total: int
    runs: list[RunStatusResponse]


class CancelResponse(BaseModel):
    run_id: str
    cancelled_rollouts: int


class DeleteResponse(BaseModel):
    run_id: str
    deleted_rollouts: int


@router.post("/runs")
async def launch_runs(body: LaunchRequest, svc: Svc, who: Who) -> LaunchResponse:
    """Start `rollout_count` rollouts of each task; `run_name` must not be in use."""
    unknown = sorted(set(body.task_overrides) - set(body.task_ids))
    if unknown:
        raise Invalid(
            ["body", "task_overrides"],
            f"task_overrides keys must be in task_ids; not in task_ids: {', '.join(unknown)}",
        )
    template = await svc.templates.tasks(who, body.scenario_id, body.task_ids)
    user_model = body.user_model_config
    request = BatchRequest(
        batch_id=body.run_name,
        name=body.run_name,
        taskset=template.taskset,
        tasks=template.tasks,
        task_slugs=body.task_ids,
        rollout_count=body.rollout_count,
        model=body.agent_model.native(["body", "model_config"]),
        user_model=user_model.native(["body", "user_model_config"]) if user_model else None,
        max_steps=body.agent_model.max_steps,
        task_overrides=body.task_overrides,
        metadata={"scenario_id": body.scenario_id},
        source=SOURCE,
        **({"max_parallel": body.max_parallel} if body.max_parallel else {}),
    )
    try:
        batch, created = await svc.batches.start_batch(who, request)
    except Invalid as error:
        raise Invalid(launch_loc(error.loc), error.message) from error
    if not created:
        raise Conflict(f"run_name {body.run_name!r} is already used; choose another")
    rollouts = await svc.batches.all_runs(who, batch.batch_id)
    return LaunchResponse(
        run_id=batch.batch_id,
        run_status=run_status(batch, [r.run_id for r in rollouts]),
        rollouts=[
            Rollout(
                rollout_id=run.run_id,
                scenario_id=body.scenario_id,
                task_id=run.task,
                run_id=batch.batch_id,
                status=_rollout_status(run.status),
            )
            for run in rollouts
        ],
    )


@router.get("/runs")
async def list_runs(
    svc: Svc,
    who: Who,
    scenario_id: str | None = None,
    source: Annotated[str, Query(pattern="|".join(SOURCES))] = SOURCE,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
    expand: Annotated[list[str] | None, Query(description="'rollouts' fills rollout_ids")] = None,
) -> RunList:
    """Runs newest first; `source=all` lists batches started by any API."""
    try:
        page = await svc.batches.list_batches(
            who,
            BatchListing(source=None if source == "all" else source),
            taskset=scenario_id,
            include_runs="rollouts" in (expand or []),
            limit=limit,
            offset=offset,
        )
    except LookupError:  # no such template: no runs of it
        return RunList(total=0, runs=[])
    return RunList(
        total=page.total, runs=[run_status(batch, batch.run_ids or []) for batch in page.batches]
    )


@router.get("/runs/{batch_id}")
async def get_run(batch_id: str, svc: Svc, who: Who) -> RunStatusResponse:
    """A run's aggregate status and its rollout ids."""
    batch = await svc.batches.get_batch(who, batch_id, include_runs=True)
    return run_status(batch, batch.run_ids or [])


@router.post("/runs/{batch_id}/cancel")
async def cancel_run(batch_id: str, svc: Svc, who: Who) -> CancelResponse:
    """Ask every active rollout to stop gracefully; pending ones never start."""
    request = CancelRequest(reason="cancelled via rl-gym")
    result = await svc.batches.cancel_batch(who, batch_id, request)
    return CancelResponse(run_id=batch_id, cancelled_rollouts=result.cancelled_runs)


@router.delete("/runs/{batch_id}")
async def delete_run(batch_id: str, svc: Svc, who: Who) -> DeleteResponse:
    """Delete an ended run with all its rollouts (409 while rollouts are still active)."""
    result = await svc.batches.delete_batch(who, batch_id)
    return DeleteResponse(run_id=batch_id, deleted_rollouts=result.deleted_runs)


def launch_loc(loc: list[str | int]) -> list[str | int]:
    """Where a refused field of the batch request was in the launch request."""
    if len(loc) < 2 or loc[0] != "body" or str(loc[1]) not in LAUNCH_FIELDS:
        return loc
    # A task of inline tasks is named by its place in task_ids; its fields were not sent.
    rest = loc[2:3] if loc[1] == "tasks" else loc[2:]
    return ["body", *LAUNCH_FIELDS[str(loc[1])], *rest]


def run_status(batch: BatchView, rollout_ids: list[str]) -> RunStatusResponse:
    counts = batch.counts
    return RunStatusResponse(
        run_id=batch.batch_id,
        scenario_id=str(batch.metadata.get("scenario_id", batch.taskset_id or "")),
        source=batch.source,
        total=counts.total,
        completed=counts.completed,
        failed=counts.failed + counts.cancelled,
        in_progress=counts.running,
        pending=counts.pending,
        running=counts.running,
        rollout_ids=rollout_ids,
    )


def _rollout_status(status: RunStatus) -> str:
    return "running" if status in {RunStatus.awaiting_input, RunStatus.idle} else status.value
